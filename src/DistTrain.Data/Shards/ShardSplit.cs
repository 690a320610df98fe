using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace DistTrain.Data.Shards;

/// <summary>One prepared split (train, validation or test): offsets mapped read-only, tokens read by position; reads are thread-safe.</summary>
/// <remarks>
/// Nothing is copied into managed memory at open: the OS pages token files in as rows are read, and several worker
/// processes on a machine share those pages. Opening checks each column's structure (offsets start at 0, the last
/// offset matches the .bin's length, the .idx has Count + 1 entries); content hashes are <see cref="PreparedData"/>'s job.
/// </remarks>
public sealed class ShardSplit : IDisposable
{
    private readonly Dictionary<string, MappedColumn> _columns = new(StringComparer.Ordinal);

    internal ShardSplit(string name, string directory, IReadOnlyList<ShardColumn> columns, long count)
    {
        Name = name;
        Directory = directory;
        Count = count;
        try
        {
            foreach (var c in columns) _columns[c.Name] = new MappedColumn(directory, c, count);
        }
        catch
        {
            Dispose();
            throw;
        }
        Columns = columns;
        TokenCount = columns.Where(c => c.IsTokens).Sum(c => _columns[c.Name].Length);
    }

    /// <summary>"train", "validation" or "test".</summary>
    public string Name { get; }

    /// <summary>The split's folder.</summary>
    public string Directory { get; }

    /// <summary>Records in the split.</summary>
    public long Count { get; }

    /// <summary>Token ids over all token columns (for text data, the text's tokens).</summary>
    public long TokenCount { get; }

    /// <summary>The columns, in schema order.</summary>
    public IReadOnlyList<ShardColumn> Columns { get; }

    /// <summary>True when the split has <paramref name="column"/>.</summary>
    public bool HasColumn(string column) => _columns.ContainsKey(column);

    /// <summary>The record count as a dataset index, after checking the split has <paramref name="column"/> (a dataset's precondition).</summary>
    /// <param name="schema">How the error names the schema that has the column.</param>
    public int Records(string column, string schema)
    {
        if (!HasColumn(column)) throw new ArgumentException($"split {Name} has no {column} column (schema is not {schema})");
        if (Count > int.MaxValue) throw new InvalidOperationException($"split {Name} has {Count:N0} records, more than an index can address");
        return (int)Count;
    }

    /// <summary>Row <paramref name="index"/> of <paramref name="column"/> as a fresh array (ids widened to int).</summary>
    public int[] Row(string column, long index)
    {
        var c = Column(column);
        var (start, end) = c.Bounds(index);
        var row = new int[checked((int)(end - start))];
        c.Copy(start, row);
        return row;
    }

    /// <summary>Number of values in row <paramref name="index"/> of <paramref name="column"/>.</summary>
    public int RowLength(string column, long index)
    {
        var (start, end) = Column(column).Bounds(index);
        return checked((int)(end - start));
    }

    /// <summary>Where row <paramref name="index"/> starts in the flattened column (index = Count gives the column's length).</summary>
    public long RowStart(string column, long index) => Column(column).Offset(index);

    /// <summary>Values in the flattened column.</summary>
    public long ColumnLength(string column) => Column(column).Length;

    /// <summary>One int32 value of a one-value-per-row column (e.g. <c>label</c>).</summary>
    public int Value(string column, long index)
    {
        Span<int> one = stackalloc int[1];
        var c = Column(column);
        c.Copy(c.Bounds(index).Start, one);
        return one[0];
    }

    /// <summary>Copies <paramref name="destination"/>.Length values of the flattened <c>text</c> column from <paramref name="start"/> (LM packing).</summary>
    public void CopyTokens(long start, Span<int> destination) => CopyTokens("text", start, destination);

    /// <summary>Copies <paramref name="destination"/>.Length values of a flattened column from <paramref name="start"/>.</summary>
    public void CopyTokens(string column, long start, Span<int> destination)
    {
        var c = Column(column);
        if (start < 0 || start + destination.Length > c.Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {start + destination.Length}) is outside column {column} of length {c.Length}");
        c.Copy(start, destination);
    }

    private MappedColumn Column(string name) =>
        _columns.TryGetValue(name, out var c) ? c : throw new ArgumentException($"split {Name} has no column '{name}' (it has {string.Join(", ", _columns.Keys)})");

    /// <summary>Unmaps the columns; rows must not be read afterwards.</summary>
    public void Dispose()
    {
        foreach (var c in _columns.Values) c.Dispose();
        _columns.Clear();
    }

    /// <summary>A column's two files, mapped.</summary>
    private sealed class MappedColumn : IDisposable
    {
        private readonly ShardColumn _column;
        private readonly long _count;
        private readonly PositionedFile _bin;
        private readonly MappedFile _idx;

        public MappedColumn(string directory, ShardColumn column, long count)
        {
            _column = column;
            _count = count;
            var idxPath = Path.Combine(directory, column.Name + ".idx");
            var binPath = Path.Combine(directory, column.Name + ".bin");
            _idx = new MappedFile(idxPath);
            try
            {
                _bin = new PositionedFile(binPath);
            }
            catch
            {
                _idx.Dispose();
                throw;
            }
            if (_idx.Bytes != (count + 1) * 8)
                Fail(idxPath, $"{_idx.Bytes} bytes, expected {(count + 1) * 8} for {count} rows");
            if (Offset(0) != 0) Fail(idxPath, $"first offset is {Offset(0)}, not 0");
            Length = Offset(count);
            var width = ShardFormat.Width(column.DType);
            if (_bin.Bytes != Length * width) Fail(binPath, $"{_bin.Bytes} bytes, but the offsets end at {Length} values of {width} bytes");
        }

        public long Length { get; }

        public long Offset(long index)
        {
            if ((ulong)index > (ulong)_count) throw new ArgumentOutOfRangeException(nameof(index), $"{index} is outside [0, {_count}]");
            return _idx.ReadInt64(index * 8);
        }

        public (long Start, long End) Bounds(long index)
        {
            if ((ulong)index >= (ulong)_count) throw new ArgumentOutOfRangeException(nameof(index), $"row {index} is outside [0, {_count})");
            long start = Offset(index), end = Offset(index + 1);
            if (end < start || end > Length) throw new InvalidDataException($"{_column.Name}.idx: row {index} has offsets {start}..{end} outside the column");
            return (start, end);
        }

        public void Copy(long start, Span<int> destination)
        {
            if (destination.Length == 0) return;
            if (_column.DType != ShardDType.UInt16)
            {
                _bin.Read(start * 4, destination);
                return;
            }
            Span<ushort> narrow = stackalloc ushort[2048];
            for (var done = 0; done < destination.Length; done += narrow.Length)
            {
                var n = Math.Min(narrow.Length, destination.Length - done);
                _bin.Read((start + done) * 2, narrow[..n]);
                for (var i = 0; i < n; i++) destination[done + i] = narrow[i];
            }
        }

        private static void Fail(string path, string what) => throw new InvalidDataException($"{path}: {what} (corrupt or truncated shard)");

        public void Dispose()
        {
            _bin?.Dispose();
            _idx?.Dispose();
        }
    }

    /// <summary>A whole file mapped read-only (an empty file is not mapped: there is nothing to read).</summary>
    private sealed class MappedFile : IDisposable
    {
        private readonly MemoryMappedFile? _file;
        private readonly MemoryMappedViewAccessor? _view;

        public MappedFile(string path)
        {
            if (!File.Exists(path)) throw new InvalidDataException($"{path}: shard file missing");
            Bytes = new FileInfo(path).Length;
            if (Bytes == 0) return;
            _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _file.CreateViewAccessor(0, Bytes, MemoryMappedFileAccess.Read);
        }

        public long Bytes { get; }

        public long ReadInt64(long byteOffset) => _view!.ReadInt64(byteOffset);

        // SafeBuffer.ReadSpan takes a reference on the mapping per call, so concurrent readers are safe.
        public void Read<T>(long byteOffset, Span<T> destination) where T : struct =>
            _view!.SafeMemoryMappedViewHandle.ReadSpan((ulong)(_view.PointerOffset + byteOffset), destination);

        public void Dispose()
        {
            _view?.Dispose();
            _file?.Dispose();
        }
    }

    /// <summary>
    /// A token file read with positioned reads (pread) through the page cache. Not mapped: training reads rows in a
    /// shuffled order, and on Linux the pages a mapping touches stay in the process's RSS. Measured with the tokens
    /// mapped, 960 rows of 64 tokens raised a process's file-backed RSS by 350 MB on a 1 GB corpus (MADV_RANDOM did
    /// not change it); read this way it stays flat (docs/benchmarks.md#own-data). The small offsets file stays mapped.
    /// </summary>
    private sealed class PositionedFile : IDisposable
    {
        private readonly SafeFileHandle _handle;
        private readonly string _path;

        public PositionedFile(string path)
        {
            if (!File.Exists(path)) throw new InvalidDataException($"{path}: shard file missing");
            _path = path;
            _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
            Bytes = RandomAccess.GetLength(_handle);
        }

        public long Bytes { get; }

        /// <summary>Fills <paramref name="destination"/> from <paramref name="byteOffset"/>; safe from several threads (each read names its offset).</summary>
        public void Read<T>(long byteOffset, Span<T> destination) where T : struct
        {
            var bytes = MemoryMarshal.AsBytes(destination);
            for (int done = 0; done < bytes.Length;)
            {
                int n = RandomAccess.Read(_handle, bytes[done..], byteOffset + done);
                if (n <= 0) throw new InvalidDataException($"{_path}: ends at byte {byteOffset + done}, before the row it should hold (truncated shard)");
                done += n;
            }
        }

        public void Dispose() => _handle.Dispose();
    }
}
