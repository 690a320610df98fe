using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace DistTrain.Data.Tokenization;

/// <summary>A user's byte-level BPE (GPT-2/RoBERTa vocab.json + merges.txt, or an HF tokenizer.json with a BPE model) behind DistTrain's specials.</summary>
/// <remarks>
/// id = <see cref="SpecialTokens.Count"/> + the file's id. Encoding is Microsoft.ML.Tokenizers' BpeTokenizer (byte level,
/// with the pre-tokenizer regex the files declare, GPT-2's by default); decoding maps each token back to its bytes
/// through <see cref="ByteLevelAlphabet"/> and joins them before UTF-8 decoding, so decode(encode(s)) == s.
/// The files' own specials (e.g. &lt;|endoftext|&gt;, &lt;s&gt;) keep their ids for decoding but are never produced from text, and
/// their post-processor (added bos/eos) is ignored: DistTrain's datasets add their own. Supported tokenizer.json variants:
/// model BPE without dropout, subword prefix/suffix or byte fallback; pre-tokenizer ByteLevel (GPT-2's regex) or
/// Sequence [Split (a regex, Isolated), ByteLevel]; normalizer none or NFC; decoder ByteLevel; ignore_merges. Anything
/// else is refused with the reason rather than loaded approximately.
/// </remarks>
public sealed class BpeTextTokenizer : ITextTokenizer
{
    /// <summary>GPT-2's pre-tokenizer: contractions, letters, digits, other symbols, each with one leading space; runs of spaces.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private const string VocabFile = "vocab.json";
    private const string MergesFile = "merges.txt";

    private readonly BpeTokenizer _inner;
    private readonly byte[]?[] _bytes;                              // file id → bytes (null: no such id)
    private readonly IReadOnlyList<KeyValuePair<string, int>> _vocab; // in id order
    private readonly IReadOnlyList<(string A, string B)> _merges;
    private readonly IReadOnlyDictionary<int, string> _added;
    private readonly Dictionary<string, int> _tokens = new(StringComparer.Ordinal);
    private readonly Regex _pieces;

    private BpeTextTokenizer(IReadOnlyList<KeyValuePair<string, int>> vocab, IReadOnlyList<(string, string)> merges,
                             string pattern, IReadOnlyDictionary<int, string> added, bool ignoreMerges, bool nfc, string source)
    {
        IgnoreMerges = ignoreMerges;
        Nfc = nfc;
        _vocab = vocab.OrderBy(kv => kv.Value).ToArray();
        _merges = merges;
        _added = added;
        Pattern = pattern;
        var tokens = _tokens;
        foreach (var (token, id) in _vocab)
        {
            if (id < 0) throw new InvalidDataException($"{source}: token '{token}' has negative id {id}");
            if (!tokens.TryAdd(token, id)) throw new InvalidDataException($"{source}: token '{token}' is listed twice");
        }
        for (var b = 0; b < 256; b++)
            if (!tokens.ContainsKey(ByteLevelAlphabet.Char((byte)b).ToString()))
                throw new InvalidDataException($"{source}: not a byte-level BPE vocabulary: no token for byte 0x{b:X2} ('{ByteLevelAlphabet.Char((byte)b)}'); only byte-level BPE (GPT-2, RoBERTa, Llama 3 style) is supported");
        for (var i = 0; i < merges.Count; i++)
        {
            var (a, c) = merges[i];
            if (!tokens.ContainsKey(a) || !tokens.ContainsKey(c) || !tokens.ContainsKey(a + c))
                throw new InvalidDataException($"{source}: merge {i + 1} '{a} {c}' uses or makes a token not in the vocabulary");
        }
        var maxId = Math.Max(_vocab.Count == 0 ? -1 : _vocab[^1].Value, added.Count == 0 ? -1 : added.Keys.Max());
        _bytes = new byte[maxId + 1][];
        foreach (var (token, id) in _vocab) _bytes[id] = ByteLevelAlphabet.Bytes(token) ?? Encoding.UTF8.GetBytes(token);
        foreach (var (id, content) in added) _bytes[id] ??= Encoding.UTF8.GetBytes(content);
        Size = SpecialTokens.Count + _bytes.Length;

        try { _pieces = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: pre-tokenizer pattern is not a .NET regex ({e.Message})", e); }
        _inner = BpeTokenizer.Create(new BpeOptions(_vocab)
        {
            Merges = merges.Select(m => $"{m.Item1} {m.Item2}").ToArray(),
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(_pieces, null),
        });
        Identity = "bpe:sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical())));
    }

    /// <inheritdoc/>
    public string Kind => "bpe";
    /// <inheritdoc/>
    public string Identity { get; }
    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>The pre-tokenizer regex.</summary>
    public string Pattern { get; }

    /// <summary>HF's ignore_merges (Llama 3): a pre-token that is itself in the vocabulary is that one token, whatever the merges would make.</summary>
    public bool IgnoreMerges { get; }

    /// <summary>Text is put in Unicode normal form C before encoding (HF normalizer NFC, e.g. Qwen2); decoding then gives the NFC form.</summary>
    public bool Nfc { get; }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        if (Nfc && !IsNfc(text)) text = text.Normalize(NormalizationForm.FormC);
        if (IgnoreMerges) return EncodeIgnoringMerges(text);
        var ids = _inner.EncodeToIds(text);
        var result = new int[ids.Count];
        for (var i = 0; i < result.Length; i++) result[i] = SpecialTokens.Count + ids[i];
        return result;
    }

    // Text with a lone surrogate has no normal form; it is encoded as it is (its bytes are U+FFFD's either way).
    private static bool IsNfc(string text)
    {
        try { return text.IsNormalized(NormalizationForm.FormC); }
        catch (ArgumentException) { return true; }
    }

    // The library has no ignore_merges, so pre-tokenize here and give it only the pieces the vocabulary lacks.
    private int[] EncodeIgnoringMerges(string text)
    {
        var result = new List<int>(text.Length / 3 + 4);
        foreach (var match in _pieces.EnumerateMatches(text))
        {
            var piece = text.Substring(match.Index, match.Length);
            if (_tokens.TryGetValue(ByteLevelAlphabet.Spell(piece), out var id)) result.Add(SpecialTokens.Count + id);
            else foreach (var i in _inner.EncodeToIds(piece, considerPreTokenization: false)) result.Add(SpecialTokens.Count + i);
        }
        return result.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids, bool skipSpecials = false) => SpecialTokens.Decode(ids, skipSpecials, id =>
    {
        var fileId = id - SpecialTokens.Count;
        if (fileId < 0 || fileId >= _bytes.Length || _bytes[fileId] is not { } b)
            throw new ArgumentOutOfRangeException(nameof(ids), $"{id} is not an id of this {Size}-id bpe tokenizer");
        return b;
    });

    /// <inheritdoc/>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var vocab = new JsonObject();
        foreach (var (token, id) in _vocab) vocab[token] = id;
        File.WriteAllText(Path.Combine(directory, VocabFile), vocab.ToJsonString(Tokenizers.Json) + "\n");
        File.WriteAllLines(Path.Combine(directory, MergesFile), ["#version: 0.2", .. _merges.Select(m => $"{m.A} {m.B}")]);
        var added = new JsonObject();
        foreach (var (id, content) in _added.OrderBy(kv => kv.Key)) added[id.ToString()] = content;
        Tokenizers.WriteDescriptor(directory, this, [VocabFile, MergesFile],
            new JsonObject { ["pattern"] = Pattern, ["ignore_merges"] = IgnoreMerges, ["nfc"] = Nfc, ["added"] = added });
    }

    // What the identity hashes: everything that changes an id or a decoded byte, independent of file formatting.
    private string Canonical()
    {
        var sb = new StringBuilder("disttrain-bpe-v1\n");
        sb.Append(JsonSerializer.Serialize(Pattern)).Append('\n');
        // Absent when false, so the identity of plain byte-level BPE files does not depend on these options existing.
        if (IgnoreMerges) sb.Append("ignore_merges\n");
        if (Nfc) sb.Append("nfc\n");
        foreach (var (token, id) in _vocab) sb.Append(id).Append(' ').Append(JsonSerializer.Serialize(token)).Append('\n');
        sb.Append("merges\n");
        foreach (var (a, b) in _merges) sb.Append(JsonSerializer.Serialize(a)).Append(' ').Append(JsonSerializer.Serialize(b)).Append('\n');
        sb.Append("added\n");
        foreach (var (id, content) in _added.OrderBy(kv => kv.Key)) sb.Append(id).Append(' ').Append(JsonSerializer.Serialize(content)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Reads GPT-2's layout: vocab.json (token → id) and merges.txt (one "a b" per line, an optional "#version" first line).</summary>
    public static BpeTextTokenizer FromVocabAndMerges(string vocabPath, string mergesPath, string pattern = Gpt2Pattern,
                                                       IReadOnlyDictionary<int, string>? added = null, bool ignoreMerges = false, bool nfc = false)
    {
        var root = ParseJson(vocabPath) as JsonObject ?? throw new InvalidDataException($"{vocabPath}: not a JSON object of token → id");
        var vocab = ReadVocab(root, vocabPath);
        var merges = new List<(string, string)>();
        var lineNo = 0;
        foreach (var line in ReadLines(mergesPath))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new InvalidDataException($"{mergesPath}:{lineNo}: not a merge 'a b' ({Truncate(line)})");
            merges.Add((parts[0], parts[1]));
        }
        return new BpeTextTokenizer(vocab, merges, pattern, added ?? new Dictionary<int, string>(), ignoreMerges, nfc, $"{vocabPath} + {mergesPath}");
    }

    /// <summary>Reads an HF tokenizers tokenizer.json whose model is byte-level BPE; refuses, naming the file and the reason, anything else.</summary>
    public static BpeTextTokenizer FromTokenizerJson(string path)
    {
        var root = ParseJson(path) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object");
        string Fail(string why) => throw new InvalidDataException($"{path}: {why}");
        try
        {
            var model = root["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no 'model' object (not an HF tokenizers tokenizer.json?)");
            var type = (string?)model["type"] ?? (model["merges"] is not null ? "BPE" : "unknown");
            if (type != "BPE") Fail($"model type '{type}' is not supported; only BPE (byte-level, GPT-2 style) is");
            if (model["dropout"] is JsonValue d && d.GetValueKind() == JsonValueKind.Number && (double)d != 0) Fail("BPE dropout is not supported (it makes encoding random)");
            if (model["continuing_subword_prefix"] is JsonValue p && (string?)p is { Length: > 0 }) Fail("continuing_subword_prefix is not supported (only byte-level BPE is)");
            if (model["end_of_word_suffix"] is JsonValue s && (string?)s is { Length: > 0 }) Fail("end_of_word_suffix is not supported (only byte-level BPE is)");
            if (model["byte_fallback"] is JsonValue bf && bf.GetValueKind() == JsonValueKind.True) Fail("byte_fallback BPE (SentencePiece style) is not supported; only byte-level BPE is");
            var nfc = NormalizerIsNfc(root["normalizer"], path);
            var pattern = PreTokenizerPattern(root["pre_tokenizer"], path);
            if (root["decoder"] is JsonObject dec && (string?)dec["type"] != "ByteLevel") Fail($"decoder '{(string?)dec["type"]}' is not supported; only ByteLevel is");
            var vocab = ReadVocab(model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: model.vocab is not an object"), path);
            var merges = new List<(string, string)>();
            foreach (var m in model["merges"]?.AsArray() ?? [])
            {
                var pair = m switch
                {
                    JsonValue v when ((string?)v)?.Split(' ') is [var a, var b] => (a, b),
                    JsonArray { Count: 2 } arr => ((string?)arr[0] ?? "", (string?)arr[1] ?? ""),
                    _ => throw new InvalidDataException($"{path}: merge {merges.Count + 1} is neither \"a b\" nor [a, b]"),
                };
                merges.Add(pair);
            }
            var added = new Dictionary<int, string>();
            foreach (var t in root["added_tokens"]?.AsArray() ?? [])
                if (t is JsonObject o && (int?)o["id"] is { } id && (string?)o["content"] is { } content) added[id] = content;
            var ignoreMerges = model["ignore_merges"] is JsonValue im && im.GetValueKind() == JsonValueKind.True;
            return new BpeTextTokenizer(vocab, merges, pattern, added, ignoreMerges, nfc, path);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: malformed tokenizer.json ({e.Message})", e);
        }
    }

    internal static BpeTextTokenizer LoadSaved(string directory, JsonObject descriptor)
    {
        var pattern = (string?)descriptor["pattern"] ?? Gpt2Pattern;
        var added = new Dictionary<int, string>();
        foreach (var (id, content) in descriptor["added"] as JsonObject ?? []) added[int.Parse(id)] = (string?)content ?? "";
        var ignoreMerges = descriptor["ignore_merges"] is JsonValue im && im.GetValueKind() == JsonValueKind.True;
        var nfc = descriptor["nfc"] is JsonValue n && n.GetValueKind() == JsonValueKind.True;
        return FromVocabAndMerges(Path.Combine(directory, VocabFile), Path.Combine(directory, MergesFile), pattern, added, ignoreMerges, nfc);
    }

    // None, or NFC alone (possibly inside a Sequence): anything else would change text in ways decoding cannot undo.
    private static bool NormalizerIsNfc(JsonNode? node, string path)
    {
        if (node is null) return false;
        var steps = node is JsonObject { } o && (string?)o["type"] == "Sequence" ? o["normalizers"]?.AsArray().ToList() ?? [] : [node];
        foreach (var step in steps)
            if ((string?)step?["type"] != "NFC")
                throw new InvalidDataException($"{path}: normalizer '{(string?)step?["type"]}' is not supported (only NFC, or none: others change the text in ways decoding cannot undo)");
        return steps.Count > 0;
    }

    private static string PreTokenizerPattern(JsonNode? node, string path)
    {
        switch (node)
        {
            case null:
                throw new InvalidDataException($"{path}: no pre_tokenizer; only byte-level BPE (pre_tokenizer ByteLevel) is supported");
            case JsonObject o when (string?)o["type"] == "ByteLevel":
                if (o["add_prefix_space"] is JsonValue aps && aps.GetValueKind() == JsonValueKind.True)
                    throw new InvalidDataException($"{path}: ByteLevel add_prefix_space=true is not supported (decode would not give the text back)");
                if (o["use_regex"] is JsonValue ur && ur.GetValueKind() == JsonValueKind.False)
                    throw new InvalidDataException($"{path}: ByteLevel use_regex=false without a Split pre-tokenizer is not supported");
                return Gpt2Pattern;
            case JsonObject o when (string?)o["type"] == "Sequence" && o["pretokenizers"] is JsonArray { Count: 2 } steps
                    && steps[0] is JsonObject split && steps[1] is JsonObject byteLevel
                    && (string?)split["type"] == "Split" && (string?)byteLevel["type"] == "ByteLevel":
                if (byteLevel["add_prefix_space"] is JsonValue aps2 && aps2.GetValueKind() == JsonValueKind.True)
                    throw new InvalidDataException($"{path}: ByteLevel add_prefix_space=true is not supported (decode would not give the text back)");
                if ((string?)split["behavior"] != "Isolated" || split["invert"] is JsonValue inv && inv.GetValueKind() == JsonValueKind.True)
                    throw new InvalidDataException($"{path}: Split pre-tokenizer with behavior '{(string?)split["behavior"]}' is not supported; only Isolated is");
                return (string?)split["pattern"]?["Regex"]
                       ?? throw new InvalidDataException($"{path}: Split pre-tokenizer has no Regex pattern (a String pattern is not supported)");
            case JsonObject o:
                throw new InvalidDataException($"{path}: pre_tokenizer '{(string?)o["type"]}' is not supported; only ByteLevel, or Sequence [Split (regex), ByteLevel], is");
            default:
                throw new InvalidDataException($"{path}: pre_tokenizer is not an object");
        }
    }

    private static List<KeyValuePair<string, int>> ReadVocab(JsonObject vocab, string source)
    {
        var result = new List<KeyValuePair<string, int>>(vocab.Count);
        foreach (var (token, id) in vocab)
        {
            if (id is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue<int>(out var value))
                throw new InvalidDataException($"{source}: token '{token}' has no integer id");
            result.Add(new(token, value));
        }
        return result;
    }

    private static JsonNode? ParseJson(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: file not found");
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    private static IEnumerable<string> ReadLines(string path) =>
        File.Exists(path) ? File.ReadLines(path) : throw new InvalidDataException($"{path}: file not found");

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
