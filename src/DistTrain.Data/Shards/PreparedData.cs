using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using DistTrain.Data.Files;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Shards;

/// <summary>A dataset tokenized once into shards read from disk: its train/validation/test splits, manifest and label set.</summary>
/// <remarks>
/// <para><b>Cache.</b> <see cref="Prepare"/> writes to <c>cacheRoot/&lt;key&gt;/</c>, where the key is a SHA-256 over the
/// format version, schema, field map, tokenizer identity, the split rule (seed and fractions, only when records are
/// split by seed) and each source file's path relative to the data root, size and <b>content</b> SHA-256. Keying on
/// content rather than modification time costs one extra read of the sources per call (SHA-256 runs at roughly
/// 1 GB/s, about a second for a 1 GB corpus, and the second read usually comes from the page cache), and buys a key that
/// is the same on every machine holding the same bytes and that a <c>touch</c> does not invalidate.</para>
/// <para><b>Atomic.</b> Shards are written to <c>cacheRoot/&lt;key&gt;.tmp-&lt;random&gt;</c> and renamed into place in
/// one step, so a folder under its key is always complete. When two workers prepare the same data at once both write,
/// one rename wins, and the other deletes its copy and opens the winner's.</para>
/// <para><b>Verification.</b> <see cref="Open(string)"/> checks every shard file's SHA-256 against the manifest (and the
/// offsets' structure) before use: a corrupt cache is an <see cref="InvalidDataException"/> naming the file, never
/// silently read. Hashing costs about a second per GB of shards per open; <see cref="Open(string, bool)"/> with
/// <c>verifyContent: false</c> skips it for callers that have just verified (structure and sizes are still checked).</para>
/// <para><b>Memory.</b> Records stream from the files in batches (about 4M characters) that are tokenized in parallel
/// and written in order, so the output is the same whatever the thread count; offsets go straight to the .idx files.
/// What grows with the data is only the table of distinct labels or tags.</para>
/// <para><b>Labels.</b> Label (and tag) ids index the training split's sorted label set, <see cref="Labels"/>. A held-out
/// record whose label never occurs in training is stored with −1 and reported in <see cref="UnseenLabels"/>; the
/// classification dataset leaves such records out and the tagging dataset ignores such words (no loss, no score).</para>
/// </remarks>
public sealed class PreparedData : IDisposable
{
    private PreparedData(string directory, PrepareManifest manifest, ShardSplit train, ShardSplit validation, ShardSplit test)
    {
        Directory = directory;
        Manifest = manifest;
        Train = train;
        Validation = validation;
        Test = test;
    }

    /// <summary>The prepared folder (cacheRoot/key).</summary>
    public string Directory { get; }

    /// <summary>What manifest.json says: sources, tokenizer, columns, counts, labels, shard hashes.</summary>
    public PrepareManifest Manifest { get; }

    /// <summary>The training split.</summary>
    public ShardSplit Train { get; }

    /// <summary>The validation split (empty when the data has none and no fraction was asked for).</summary>
    public ShardSplit Validation { get; }

    /// <summary>The test split (possibly empty).</summary>
    public ShardSplit Test { get; }

    /// <summary>The split named <paramref name="split"/>.</summary>
    public ShardSplit this[SplitName split] => split switch
    {
        SplitName.Train => Train,
        SplitName.Validation => Validation,
        _ => Test,
    };

    /// <summary>The training label set (classification) or tag set (token tags), sorted; empty for other schemas.</summary>
    public IReadOnlyList<string> Labels => Manifest.Labels;

    /// <summary>Notes such as "validation: 3 records with labels never seen in training: x, y"; empty when none.</summary>
    public IReadOnlyList<string> UnseenLabels => Manifest.UnseenLabels;

    /// <summary>Tokenizes <paramref name="files"/> into shards under <paramref name="cacheRoot"/>, or opens the copy already there.</summary>
    /// <param name="splitSeed">Seed of the record split when the files are not named by split (see <see cref="DataSplitter"/>).</param>
    /// <param name="validationFraction">Unsplit data: the share of records for validation. Presplit data without validation
    /// files: the share of the train files' records taken for validation. Otherwise unused.</param>
    /// <param name="testFraction">Unsplit data only: the share of records for test.</param>
    /// <param name="cacheRoot">The folder prepared datasets are kept in, one sub-folder per key.</param>
    /// <exception cref="DataFormatException">Bad data (the message names the file and line), or no training records.</exception>
    /// <exception cref="InvalidDataException">An existing cached copy is corrupt (the message names the file).</exception>
    public static PreparedData Prepare(DataFileSet files, DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap, ITextTokenizer tokenizer,
                                       ulong splitSeed, double validationFraction, double testFraction, string cacheRoot,
                                       IProgress<PrepareProgress>? progress = null, CancellationToken ct = default)
    {
        DataSplitter.Check(validationFraction, testFraction);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("shards are little-endian and are read in place");
        var root = files.DisplayRoot;
        var sources = files.Train.Select(f => (File: f, Split: SplitName.Train))
            .Concat(files.Validation.Select(f => (File: f, Split: SplitName.Validation)))
            .Concat(files.Test.Select(f => (File: f, Split: SplitName.Test)))
            .Select(s => Describe(s.File, files.Presplit ? s.Split : null, root, ct))
            .ToList();
        var carve = files.Presplit && files.Validation.Count == 0 && validationFraction > 0;
        var rule = !files.Presplit ? new PreparedSplitRule(splitSeed, validationFraction, testFraction)
                 : carve ? new PreparedSplitRule(splitSeed, validationFraction, 0) : null;
        var key = CacheKey(schema, fieldMap, tokenizer, rule, sources);
        var directory = Path.Combine(Path.GetFullPath(cacheRoot), key);
        RemoveAbandoned(directory);
        if (System.IO.Directory.Exists(directory)) return Open(directory);

        System.IO.Directory.CreateDirectory(cacheRoot);
        var temp = $"{directory}.tmp-{Guid.NewGuid():N}";
        try
        {
            System.IO.Directory.CreateDirectory(temp);
            ShardWriter.Write(temp, files, schema, fieldMap, tokenizer, rule, key, sources, progress, ct);
            try { System.IO.Directory.Move(temp, directory); }
            catch (IOException) when (System.IO.Directory.Exists(directory)) { /* another worker won the rename: use its copy */ }
        }
        finally
        {
            if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, recursive: true);
        }
        return Open(directory);
    }

    /// <summary>Opens a prepared folder, checking every shard's SHA-256 against the manifest.</summary>
    /// <exception cref="InvalidDataException">A missing, truncated or corrupt file; the message names it.</exception>
    public static PreparedData Open(string directory) => Open(directory, verifyContent: true);

    /// <summary>Opens a prepared folder; with <paramref name="verifyContent"/> false only sizes and offsets are checked.</summary>
    public static PreparedData Open(string directory, bool verifyContent)
    {
        var manifest = PrepareManifest.Read(Path.Combine(directory, ShardFormat.ManifestFile));
        if (verifyContent) Verify(directory, manifest);
        var columns = manifest.Columns.Select(c => new ShardColumn(c.Name, ShardFormat.ParseDType(c.DType), c.IsTokens)).ToList();
        ShardSplit Split(string name) => manifest.Splits.TryGetValue(name, out var info)
            ? new ShardSplit(name, Path.Combine(directory, name), columns, info.Records)
            : throw new InvalidDataException($"{Path.Combine(directory, ShardFormat.ManifestFile)}: no split '{name}'");
        ShardSplit? train = null, validation = null;
        try
        {
            train = Split("train");
            validation = Split("validation");
            return new PreparedData(directory, manifest, train, validation, Split("test"));
        }
        catch
        {
            train?.Dispose();
            validation?.Dispose();
            throw;
        }
    }

    /// <summary>Re-hashes every shard file against the manifest (what <see cref="Open(string)"/> does).</summary>
    public void Verify() => Verify(Directory, Manifest);

    private static void Verify(string directory, PrepareManifest manifest)
    {
        foreach (var file in manifest.Splits.Values.SelectMany(s => s.Files))
        {
            var path = Path.Combine(directory, file.Path);
            if (!File.Exists(path)) throw new InvalidDataException($"{path}: shard file missing");
            var bytes = new FileInfo(path).Length;
            if (bytes != file.Bytes) throw new InvalidDataException($"{path}: {bytes} bytes, the manifest says {file.Bytes} (truncated or corrupt shard; delete {directory} to prepare again)");
            var sha = ShardFormat.Sha256(path, CancellationToken.None);
            if (sha != file.Sha256) throw new InvalidDataException($"{path}: SHA-256 {sha} differs from the manifest's {file.Sha256} (corrupt shard; delete {directory} to prepare again)");
        }
    }

    /// <summary>Unmaps every split.</summary>
    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
        Test.Dispose();
    }

    private static PreparedSource Describe(string file, SplitName? split, string root, CancellationToken ct)
    {
        var info = new FileInfo(file);
        if (!info.Exists) throw new DataFormatException($"{Path.GetRelativePath(root, file)}: file not found");
        return new PreparedSource(Path.GetRelativePath(root, file).Replace('\\', '/'), split?.ToString().ToLowerInvariant(),
                                  info.Length, info.LastWriteTimeUtc, ShardFormat.Sha256(file, ct));
    }

    private static string CacheKey(DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap, ITextTokenizer tokenizer,
                                   PreparedSplitRule? rule, IReadOnlyList<PreparedSource> sources)
    {
        var map = new JsonObject();
        // Entries mapping a field to its own name change nothing, so they do not change the key either.
        foreach (var (k, v) in (fieldMap ?? new Dictionary<string, string>()).Where(kv => kv.Key != kv.Value).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            map[k] = v;
        var material = new JsonObject
        {
            ["format"] = ShardFormat.Name,
            ["version"] = ShardFormat.Version,
            ["schema"] = DataSchemas.Name(schema),
            ["field_map"] = map,
            ["tokenizer"] = tokenizer.Identity,
            ["split"] = rule is null ? null : new JsonObject
            {
                ["seed"] = rule.Seed.ToString(CultureInfo.InvariantCulture),
                ["validation"] = rule.ValidationFraction.ToString("R", CultureInfo.InvariantCulture),
                ["test"] = rule.TestFraction.ToString("R", CultureInfo.InvariantCulture),
            },
            ["sources"] = new JsonArray(sources.Select(s => (JsonNode)new JsonObject
            {
                ["path"] = s.Path, ["split"] = s.Split, ["bytes"] = s.Bytes, ["sha256"] = s.Sha256,
            }).ToArray()),
        };
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material.ToJsonString())))[..32];
    }

    /// <summary>How long a temporary folder may go without a write before it counts as abandoned (its writer was killed).</summary>
    public static TimeSpan AbandonedAfter { get; } = TimeSpan.FromHours(1);

    // A worker killed while preparing leaves its temporary folder behind; one whose files have not been written for
    // an hour is not being written by anyone (a live writer appends to its .bin files continuously).
    private static void RemoveAbandoned(string directory)
    {
        var parent = Path.GetDirectoryName(directory)!;
        if (!System.IO.Directory.Exists(parent)) return;
        foreach (var temp in System.IO.Directory.GetDirectories(parent, Path.GetFileName(directory) + ".tmp-*"))
        {
            try
            {
                var newest = System.IO.Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories)
                    .Select(File.GetLastWriteTimeUtc).Append(System.IO.Directory.GetLastWriteTimeUtc(temp)).Max();
                if (DateTime.UtcNow - newest > AbandonedAfter) System.IO.Directory.Delete(temp, recursive: true);
            }
            catch (IOException) { /* another worker removed it first, or it is in use: leave it */ }
            catch (UnauthorizedAccessException) { }
        }
    }
}
