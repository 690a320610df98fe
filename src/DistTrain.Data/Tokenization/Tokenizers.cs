using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistTrain.Data.Tokenization;

/// <summary>Makes, saves and loads the tokenizers a job can declare (<see cref="ITextTokenizer"/>).</summary>
/// <remarks>
/// A saved tokenizer is a directory: the descriptor <see cref="FileName"/> (format, kind, identity, size, the kind's
/// files) beside the kind's own files (subvocab.json; vocab.json + merges.txt; nothing for gpt2). Loading recomputes
/// the identity from the files and refuses a directory whose files no longer match their descriptor.
/// </remarks>
public static class Tokenizers
{
    /// <summary>The descriptor every saved tokenizer has.</summary>
    public const string FileName = "tokenizer.disttrain.json";

    private const string FormatName = "disttrain-tokenizer";

    // Relaxed escaping keeps "<pad>" and non-ASCII tokens readable in the files.
    internal static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Full GPT-2 (50,257 ids) shifted behind the specials: Size 50,295.</summary>
    public static ITextTokenizer Gpt2() => Gpt2TextTokenizer.Shared;

    /// <summary>
    /// A user's tokenizer files: byte-level BPE (a directory with tokenizer.json, or with vocab.json + merges.txt, or a path
    /// to a tokenizer.json), or a BERT WordPiece vocabulary (a directory with vocab.txt).
    /// </summary>
    /// <exception cref="InvalidDataException">Missing, malformed or unsupported files; the message names the file and why.</exception>
    public static ITextTokenizer FromFiles(string path)
    {
        if (File.Exists(path))
        {
            if (Path.GetExtension(path) != ".json" || Path.GetFileName(path) == "vocab.json")
                throw new InvalidDataException($"{path}: expected a tokenizer.json (HF tokenizers) or a directory with vocab.json + merges.txt");
            return BpeTextTokenizer.FromTokenizerJson(path);
        }
        if (!Directory.Exists(path)) throw new InvalidDataException($"{path}: no such tokenizer file or directory");
        var json = Path.Combine(path, "tokenizer.json");
        // A BERT checkpoint folder carries both vocab.txt and a WordPiece tokenizer.json; the vocab.txt is the one to read.
        if (File.Exists(Path.Combine(path, "vocab.txt")) && (!File.Exists(json) || WordPieceTextTokenizer.IsWordPieceJson(json)))
            return WordPieceTextTokenizer.FromDirectory(path);
        if (File.Exists(json)) return BpeTextTokenizer.FromTokenizerJson(json);
        string vocab = Path.Combine(path, "vocab.json"), merges = Path.Combine(path, "merges.txt");
        if (File.Exists(vocab) && File.Exists(merges)) return BpeTextTokenizer.FromVocabAndMerges(vocab, merges);
        var found = Directory.EnumerateFileSystemEntries(path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        throw new InvalidDataException($"{path}: expected tokenizer.json, vocab.json + merges.txt, or vocab.txt (WordPiece); found: {(found.Length == 0 ? "nothing" : string.Join(", ", found))}");
    }

    /// <summary>Reads a tokenizer written by <see cref="ITextTokenizer.Save"/>, of any kind.</summary>
    /// <exception cref="InvalidDataException">The directory, its descriptor or its files are missing or corrupt, or the files do not give the recorded identity.</exception>
    public static ITextTokenizer Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: no saved tokenizer here (file not found)");
        JsonObject descriptor;
        try { descriptor = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a tokenizer descriptor ({e.Message})", e); }
        if ((string?)descriptor["format"] != FormatName || (int?)descriptor["version"] != 1)
            throw new InvalidDataException($"{path}: not a {FormatName} v1 file");
        var kind = (string?)descriptor["kind"];
        ITextTokenizer tokenizer = kind switch
        {
            "gpt2" => Gpt2(),
            "subvocab" => SubVocabulary.Load(Path.Combine(directory, SubVocabulary.FileName)),
            "bpe" => BpeTextTokenizer.LoadSaved(directory, descriptor),
            "wordpiece" => WordPieceTextTokenizer.LoadSaved(directory, descriptor),
            _ => throw new InvalidDataException($"{path}: unknown tokenizer kind '{kind}' (expected subvocab, gpt2, bpe or wordpiece)"),
        };
        if (tokenizer.Identity != (string?)descriptor["identity"])
            throw new InvalidDataException($"{path}: the files give identity {tokenizer.Identity}, not the recorded {(string?)descriptor["identity"]} (changed after saving?)");
        if (tokenizer.Size != (int?)descriptor["size"])
            throw new InvalidDataException($"{path}: the files give {tokenizer.Size} ids, not the recorded {(int?)descriptor["size"]}");
        return tokenizer;
    }

    internal static void WriteDescriptor(string directory, ITextTokenizer tokenizer, IReadOnlyList<string> files, JsonObject? extra = null)
    {
        Directory.CreateDirectory(directory);
        var json = new JsonObject
        {
            ["format"] = FormatName,
            ["version"] = 1,
            ["kind"] = tokenizer.Kind,
            ["identity"] = tokenizer.Identity,
            ["size"] = tokenizer.Size,
            ["specials"] = SpecialTokens.Count,
            ["files"] = new JsonArray(files.Select(f => (JsonNode)f!).ToArray()),
        };
        foreach (var (key, value) in extra ?? []) json[key] = value?.DeepClone();
        File.WriteAllText(Path.Combine(directory, FileName), json.ToJsonString(new JsonSerializerOptions(Json) { WriteIndented = true }) + "\n");
    }
}
