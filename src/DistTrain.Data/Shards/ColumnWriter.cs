using System.Runtime.InteropServices;

namespace DistTrain.Data.Shards;

/// <summary>Appends rows to one column's .bin and .idx through buffered streams (nothing is kept per row).</summary>
internal sealed class ColumnWriter : IDisposable
{
    private readonly FileStream _bin;
    private readonly FileStream _idx;
    private readonly ShardDType _dtype;
    private readonly uint _limit; // token columns: the tokenizer's size; an id at or above it is a tokenizer bug
    private ushort[] _narrow = new ushort[4096];

    public ColumnWriter(string directory, ShardColumn column, int tokenizerSize)
    {
        Column = column;
        _dtype = column.DType;
        _limit = column.IsTokens ? (uint)tokenizerSize : uint.MaxValue;
        _bin = new FileStream(Path.Combine(directory, column.Name + ".bin"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _idx = new FileStream(Path.Combine(directory, column.Name + ".idx"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        WriteOffset(0);
    }

    public ShardColumn Column { get; }

    /// <summary>Values written so far.</summary>
    public long Length { get; private set; }

    public void Append(ReadOnlySpan<int> row)
    {
        if (_dtype == ShardDType.UInt16)
        {
            if (_narrow.Length < row.Length) _narrow = new ushort[Math.Max(row.Length, _narrow.Length * 2)];
            for (var i = 0; i < row.Length; i++)
            {
                if ((uint)row[i] >= _limit || (uint)row[i] > ushort.MaxValue) throw OutOfRange(row[i]);
                _narrow[i] = (ushort)row[i];
            }
            _bin.Write(MemoryMarshal.AsBytes(_narrow.AsSpan(0, row.Length)));
        }
        else
        {
            if (_dtype == ShardDType.UInt32)
                foreach (var id in row)
                    if ((uint)id >= _limit) throw OutOfRange(id);
            _bin.Write(MemoryMarshal.AsBytes(row));
        }
        Length += row.Length;
        WriteOffset(Length);
    }

    private InvalidOperationException OutOfRange(int id) =>
        new($"the tokenizer produced id {id}, outside [0, {_limit}), for column {Column.Name}");

    private void WriteOffset(long offset)
    {
        Span<long> one = [offset];
        _idx.Write(MemoryMarshal.AsBytes(one));
    }

    public void Dispose()
    {
        _bin.Dispose();
        _idx.Dispose();
    }
}
