using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DistTrain.Data.Shards;

/// <summary>manifest.json of a prepared dataset: what it was made from, with what, and a SHA-256 per shard file.</summary>
/// <param name="Key">The cache key (the folder's name under the cache root).</param>
/// <param name="Labels">Classification: the training split's distinct labels, sorted (numerically when all are integers); token tags: the training tags, sorted ordinally; else empty. A label id is an index here.</param>
/// <param name="UnseenLabels">Readable notes on held-out records (or words) whose label never occurs in training; empty when none.</param>
public sealed record PrepareManifest(
    string Format,
    int Version,
    string Key,
    PreparedTokenizer Tokenizer,
    string Schema,
    IReadOnlyDictionary<string, string>? FieldMap,
    bool Presplit,
    PreparedSplitRule? SplitRule,
    IReadOnlyList<PreparedColumn> Columns,
    IReadOnlyList<string> Labels,
    IReadOnlyList<string> UnseenLabels,
    IReadOnlyDictionary<string, PreparedSplitInfo> Splits,
    IReadOnlyList<PreparedSource> Sources,
    DateTime CreatedUtc)
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads a manifest; InvalidDataException naming the path when it is missing, unreadable or of another format.</summary>
    public static PrepareManifest Read(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: manifest missing (not a prepared data folder)");
        PrepareManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<PrepareManifest>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: corrupt manifest ({e.Message})", e); }
        if (manifest is null || manifest.Format != ShardFormat.Name || manifest.Version != ShardFormat.Version)
            throw new InvalidDataException($"{path}: not a {ShardFormat.Name} v{ShardFormat.Version} manifest");
        return manifest;
    }

    internal void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json) + "\n");
}

/// <summary>The tokenizer the ids belong to.</summary>
public sealed record PreparedTokenizer(string Kind, string Identity, int Size);

/// <summary>How unsplit records were assigned (see <see cref="Files.DataSplitter"/>); null when every split came from files.</summary>
public sealed record PreparedSplitRule(ulong Seed, double ValidationFraction, double TestFraction);

/// <summary>A column and its dtype ("uint16", "uint32", "int32").</summary>
public sealed record PreparedColumn(string Name, string DType, bool IsTokens);

/// <summary>One split: record and token counts, and its shard files with sizes and SHA-256.</summary>
public sealed record PreparedSplitInfo(long Records, long Tokens, IReadOnlyList<PreparedFile> Files);

/// <summary>A shard file, relative to the prepared folder.</summary>
public sealed record PreparedFile(string Path, long Bytes, string Sha256);

/// <summary>A source file: path relative to the data root, the split its files were named for (null if unsplit), size, time, content hash.</summary>
public sealed record PreparedSource(string Path, string? Split, long Bytes, DateTime LastWriteUtc, string Sha256);

/// <summary>Where preparing has got to.</summary>
/// <param name="BytesRead">Source bytes read so far (approximate within a file).</param>
public sealed record PrepareProgress(long BytesRead, long TotalBytes, long Records, long Tokens, TimeSpan Elapsed);
