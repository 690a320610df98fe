using System.Globalization;
using DistTrain.Data.Files;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Shards;

/// <summary>Writes one prepared dataset into a (temporary) folder: records streamed, tokenized in parallel batches, written in order.</summary>
/// <remarks>
/// Labels and tags get provisional ids in order of first appearance while records stream past (splits interleave
/// when data is split by seed, so the training label set is known only at the end); the label files are then
/// rewritten once, streaming, with ids into the sorted training set (−1 for labels only held-out records have).
/// </remarks>
internal static class ShardWriter
{
    private const int BatchRecords = 8192;
    private const long BatchChars = 4L << 20;

    public static void Write(string directory, DataFileSet files, DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap,
                              ITextTokenizer tokenizer, PreparedSplitRule? rule, string key, IReadOnlyList<PreparedSource> sources,
                              IProgress<PrepareProgress>? progress, CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var columns = ShardFormat.Columns(schema, tokenizer.Size);
        var splits = Enum.GetValues<SplitName>();
        var writers = new Dictionary<SplitName, ColumnWriter[]>();
        var records = splits.ToDictionary(s => s, _ => 0L);
        var labels = new LabelTable();
        long totalBytes = sources.Sum(s => s.Bytes), doneBytes = 0, fileChars = 0, allRecords = 0;
        var currentFile = 0;
        try
        {
            foreach (var split in splits)
            {
                var dir = Path.Combine(directory, ShardFormat.SplitFolder(split));
                System.IO.Directory.CreateDirectory(dir);
                writers[split] = columns.Select(c => new ColumnWriter(dir, c, tokenizer.Size)).ToArray();
            }
            var batch = new List<SplitRecord>(BatchRecords);
            long batchChars = 0;
            var seed = rule?.Seed ?? 0;
            foreach (var record in DataSplitter.Records(files, schema, fieldMap, seed, rule?.ValidationFraction ?? 0, rule?.TestFraction ?? 0))
            {
                ct.ThrowIfCancellationRequested();
                batch.Add(record);
                batchChars += Chars(record.Record);
                if (batch.Count >= BatchRecords || batchChars >= BatchChars) Flush();
            }
            Flush();

            void Flush()
            {
                if (batch.Count == 0) return;
                var encoded = new int[batch.Count][][];
                // Tokenizing is the slow part; each record is encoded on its own and written in order afterwards, so
                // the shards are identical for any degree of parallelism.
                Parallel.For(0, batch.Count, new ParallelOptions { CancellationToken = ct }, i => encoded[i] = Encode(schema, tokenizer, batch[i].Record));
                for (var i = 0; i < batch.Count; i++)
                {
                    var (split, record, fileIndex) = batch[i];
                    Intern(schema, record, split, encoded[i], labels);
                    var w = writers[split];
                    for (var c = 0; c < w.Length; c++) w[c].Append(encoded[i][c]);
                    records[split]++;
                    allRecords++;
                    while (currentFile < fileIndex) { doneBytes += sources[currentFile++].Bytes; fileChars = 0; }
                    fileChars += Chars(record);
                }
                batch.Clear();
                batchChars = 0;
                var tokens = writers.Values.SelectMany(w => w).Where(w => w.Column.IsTokens).Sum(w => w.Length);
                var inFile = currentFile < sources.Count ? Math.Min(fileChars, sources[currentFile].Bytes) : 0;
                progress?.Report(new PrepareProgress(Math.Min(totalBytes, doneBytes + inFile), totalBytes, allRecords, tokens, clock.Elapsed));
            }
        }
        finally
        {
            foreach (var w in writers.Values.SelectMany(w => w)) w.Dispose();
        }
        if (records[SplitName.Train] == 0)
            throw new DataFormatException($"{string.Join(", ", sources.Select(s => s.Path).Take(3))}: no training records " +
                                          $"({allRecords} records, all assigned to validation or test)");

        // Final label ids: indices into the training label set; −1 for labels only held-out records have.
        var (labelSet, unseen) = FinishLabels(directory, schema, labels);
        var splitInfo = new Dictionary<string, PreparedSplitInfo>();
        foreach (var split in splits)
        {
            var shardFiles = columns.SelectMany(c => new[] { c.Name + ".bin", c.Name + ".idx" })
                .Select(f => $"{ShardFormat.SplitFolder(split)}/{f}")
                .Select(f => new PreparedFile(f, new FileInfo(Path.Combine(directory, f)).Length, ShardFormat.Sha256(Path.Combine(directory, f), ct)))
                .ToList();
            splitInfo[ShardFormat.SplitFolder(split)] = new PreparedSplitInfo(records[split], writers[split].Where(w => w.Column.IsTokens).Sum(w => w.Length), shardFiles);
        }
        var manifest = new PrepareManifest(ShardFormat.Name, ShardFormat.Version, key,
            new PreparedTokenizer(tokenizer.Kind, tokenizer.Identity, tokenizer.Size), DataSchemas.Name(schema),
            fieldMap is null ? null : new SortedDictionary<string, string>(fieldMap.ToDictionary(), StringComparer.Ordinal),
            files.Presplit, rule,
            columns.Select(c => new PreparedColumn(c.Name, ShardFormat.DTypeName(c.DType), c.IsTokens)).ToList(),
            labelSet, unseen, splitInfo, sources, started);
        manifest.Write(Path.Combine(directory, ShardFormat.ManifestFile));
        progress?.Report(new PrepareProgress(totalBytes, totalBytes, allRecords, splitInfo.Values.Sum(s => s.Tokens), clock.Elapsed));
    }

    private static long Chars(DataRecord record)
    {
        long n = 0;
        foreach (var v in record.Fields.Values)
            n += v switch { string s => s.Length, string[] words => words.Sum(w => w.Length + 1), _ => 1 };
        return n;
    }

    // The columns of one record, in ShardFormat.Columns order; label and tag columns are filled by Intern.
    private static int[][] Encode(DataSchema schema, ITextTokenizer tokenizer, DataRecord record)
    {
        switch (schema)
        {
            case DataSchema.Text:
                return [tokenizer.Encode(record.Text("text"))];
            case DataSchema.Classification:
                return [tokenizer.Encode(record.Text("text")), [0]];
            case DataSchema.TokenTags:
                var words = record.Words("tokens");
                var ids = new List<int>(words.Length * 2);
                var starts = new int[words.Length];
                for (var w = 0; w < words.Length; w++)
                {
                    // Each word after the first with its leading space, as in running text: the BPE never merges
                    // across that space, so the pieces concatenate to the sentence's tokens and word starts are exact.
                    starts[w] = ids.Count;
                    ids.AddRange(tokenizer.Encode(w == 0 ? words[w] : " " + words[w]));
                }
                return [ids.ToArray(), starts, new int[words.Length]];
            case DataSchema.Sft:
                return [tokenizer.Encode(record.Text("prompt")), tokenizer.Encode(record.Text("response"))];
            default:
                return [tokenizer.Encode(record.Text("prompt")), tokenizer.Encode(record.Text("chosen")), tokenizer.Encode(record.Text("rejected"))];
        }
    }

    private static void Intern(DataSchema schema, DataRecord record, SplitName split, int[][] encoded, LabelTable labels)
    {
        if (schema == DataSchema.Classification) encoded[1][0] = labels.Intern(record.Label(), split);
        else if (schema == DataSchema.TokenTags)
        {
            var tags = record.Words("tags");
            for (var i = 0; i < tags.Length; i++) encoded[2][i] = labels.Intern(tags[i], split);
        }
    }

    private static (IReadOnlyList<string> Labels, IReadOnlyList<string> Unseen) FinishLabels(string directory, DataSchema schema, LabelTable table)
    {
        if (schema is not (DataSchema.Classification or DataSchema.TokenTags)) return ([], []);
        var train = table.TrainLabels().ToList();
        // Integer labels sort as numbers (2 before 10); tags and other labels ordinally.
        var numeric = schema == DataSchema.Classification && train.All(l => long.TryParse(l, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _));
        var sorted = numeric ? train.OrderBy(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList() : train.Order(StringComparer.Ordinal).ToList();
        var finalId = sorted.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i, StringComparer.Ordinal);
        var map = table.Names.Select(n => finalId.GetValueOrDefault(n, -1)).ToArray();
        var column = schema == DataSchema.Classification ? "label" : "tags";
        var unseen = new List<string>();
        foreach (var split in new[] { SplitName.Validation, SplitName.Test, SplitName.Train })
        {
            var path = Path.Combine(directory, ShardFormat.SplitFolder(split), column + ".bin");
            var (count, names) = Remap(path, map, table.Names);
            if (count == 0) continue;
            var what = schema == DataSchema.Classification ? "records with labels" : "words with tags";
            var shown = names.Take(10).ToList();
            unseen.Add($"{ShardFormat.SplitFolder(split)}: {count} {what} never seen in training: {string.Join(", ", shown)}{(names.Count > shown.Count ? $" and {names.Count - shown.Count} more" : "")}");
        }
        return (sorted, unseen);
    }

    // Rewrites provisional ids as final ones, streaming; returns how many values had no training label, and which.
    private static (long Count, List<string> Names) Remap(string path, int[] map, IReadOnlyList<string> names)
    {
        var temp = path + ".remap";
        long unseen = 0;
        var unseenNames = new SortedSet<string>(StringComparer.Ordinal);
        using (var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var buffer = new byte[1 << 16];
            int read;
            while ((read = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false)) > 0)
            {
                var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(buffer.AsSpan(0, read));
                for (var i = 0; i < values.Length; i++)
                {
                    var provisional = values[i];
                    values[i] = map[provisional];
                    if (values[i] >= 0) continue;
                    unseen++;
                    unseenNames.Add(names[provisional]);
                }
                output.Write(buffer, 0, read);
            }
        }
        File.Move(temp, path, overwrite: true);
        return (unseen, unseenNames.ToList());
    }

    /// <summary>Provisional label ids in order of first appearance, and whether each occurs in training.</summary>
    private sealed class LabelTable
    {
        private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
        private readonly List<string> _names = [];
        private readonly List<bool> _inTrain = [];

        public IReadOnlyList<string> Names => _names;

        public int Intern(string label, SplitName split)
        {
            if (!_ids.TryGetValue(label, out var id))
            {
                _ids[label] = id = _names.Count;
                _names.Add(label);
                _inTrain.Add(false);
            }
            if (split == SplitName.Train) _inTrain[id] = true;
            return id;
        }

        public IEnumerable<string> TrainLabels() => _names.Where((_, i) => _inTrain[i]);
    }
}
