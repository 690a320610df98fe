using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistTrain.Data.Tokenization;

/// <summary>How a <see cref="SubVocabulary"/> spells a GPT-2 token it does not hold.</summary>
public enum FallbackMode
{
    /// <summary>One byte id per byte (the simplest exact spelling).</summary>
    Bytes,

    /// <summary>The fewest ids among merged tokens and bytes whose bytes concatenate to the token (also exact, shorter).</summary>
    Pieces,
}

/// <summary>A corpus-derived subset of GPT-2 with exact round trip: specials, then 256 byte tokens, then the K most frequent GPT-2 tokens.</summary>
/// <remarks>
/// Text is first cut by GPT-2's BPE; a GPT-2 token in the subset keeps one id, any other is spelled as its bytes.
/// So the model gets a small embedding and softmax (8192 instead of 50257 rows) and every string still
/// survives decode(encode(s)) == s, because byte tokens can spell anything GPT-2 can.
/// Layout: ids [0, <see cref="SpecialTokens.Count"/>) specials; then byte b at <see cref="ByteOffset"/> + b;
/// then merged tokens from <see cref="FirstMergedId"/>, most frequent first.
/// With <see cref="FallbackMode.Pieces"/> an outside token is spelled with merged tokens where they fit, which
/// on Brown at 8192 ids cuts the sequence-length growth from about 1.54× to 1.14× (docs/data.md).
/// </remarks>
public sealed class SubVocabulary : ITextTokenizer
{
    /// <summary>The file <see cref="ITextTokenizer.Save"/> writes beside the tokenizer descriptor.</summary>
    public const string FileName = "subvocab.json";

    /// <summary>Id of byte 0; byte b is ByteOffset + b.</summary>
    public const int ByteOffset = SpecialTokens.Count;

    /// <summary>First id of a merged (multi-byte) GPT-2 token.</summary>
    public const int FirstMergedId = ByteOffset + 256;

    /// <summary>Format name in the JSON file.</summary>
    public const string FormatName = "disttrain-subvocab";

    private readonly Gpt2Tokenizer _gpt2;
    private readonly int[] _merged;     // sub id - FirstMergedId → GPT-2 id
    private readonly int[] _fromGpt2;   // GPT-2 id → sub id, or -1 when it falls back
    private readonly Dictionary<string, int> _mergedByBytes = new(StringComparer.Ordinal); // Latin-1 key: one char per byte
    private readonly int _longestMerged;
    private readonly ConcurrentDictionary<int, int[]> _spellings = new(); // Pieces fallback, computed once per GPT-2 id
    private readonly Lazy<string> _identity;

    private SubVocabulary(IReadOnlyList<int> mergedGpt2Ids, string description, FallbackMode fallback, Gpt2Tokenizer gpt2)
    {
        _gpt2 = gpt2;
        _merged = mergedGpt2Ids.ToArray();
        Description = description;
        Fallback = fallback;
        _fromGpt2 = Enumerable.Repeat(-1, gpt2.VocabularySize).ToArray();
        for (var id = 0; id < gpt2.VocabularySize; id++)
            if (gpt2.TokenBytes(id) is [var b]) _fromGpt2[id] = ByteOffset + b;
        for (var i = 0; i < _merged.Length; i++)
        {
            var g = _merged[i];
            if (g < 0 || g >= gpt2.VocabularySize) throw new ArgumentException($"GPT-2 id {g} is out of range");
            if (gpt2.TokenBytes(g).Length < 2) throw new ArgumentException($"GPT-2 id {g} is a single byte, already a byte token");
            if (_fromGpt2[g] >= FirstMergedId) throw new ArgumentException($"GPT-2 id {g} is listed twice");
            _fromGpt2[g] = FirstMergedId + i;
            _mergedByBytes[Encoding.Latin1.GetString(gpt2.TokenBytes(g))] = FirstMergedId + i;
            _longestMerged = Math.Max(_longestMerged, gpt2.TokenBytes(g).Length);
        }
        _identity = new(() => "subvocab:sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ToJson()))));
    }

    /// <summary>"subvocab".</summary>
    public string Kind => "subvocab";

    /// <summary>"subvocab:sha256:" + the SHA-256 of the file <see cref="Save(string)"/> writes (its canonical JSON).</summary>
    public string Identity => _identity.Value;

    /// <summary>Number of ids (specials + 256 bytes + merged tokens): the model's vocabulary size.</summary>
    public int Size => FirstMergedId + _merged.Length;

    /// <summary>GPT-2 ids of the merged tokens, in sub-id order.</summary>
    public IReadOnlyList<int> MergedGpt2Ids => _merged;

    /// <summary>How GPT-2 tokens outside the vocabulary are spelled (stored in the file: it changes the ids).</summary>
    public FallbackMode Fallback { get; }

    /// <summary>Where the vocabulary came from (free text, stored in the file).</summary>
    public string Description { get; }

    /// <summary>Picks the most frequent multi-byte GPT-2 tokens until the vocabulary has <paramref name="targetSize"/> ids.</summary>
    /// <param name="gpt2Counts">How often each GPT-2 id occurs in the training text.</param>
    public static SubVocabulary FromCounts(IReadOnlyDictionary<int, long> gpt2Counts, int targetSize, string description,
                                           FallbackMode fallback = FallbackMode.Bytes, Gpt2Tokenizer? gpt2 = null)
    {
        gpt2 ??= Gpt2Tokenizer.Shared;
        if (targetSize < FirstMergedId) throw new ArgumentOutOfRangeException(nameof(targetSize), $"must be at least {FirstMergedId}");
        var tokenizer = gpt2;
        var merged = gpt2Counts
            .Where(kv => kv.Value > 0 && tokenizer.TokenBytes(kv.Key).Length >= 2)
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key) // ties by id keep the choice deterministic
            .Take(targetSize - FirstMergedId)
            .Select(kv => kv.Key)
            .ToArray();
        return new SubVocabulary(merged, description, fallback, gpt2);
    }

    /// <summary>Counts GPT-2 ids over texts, each weighted by how often it occurs (distinct word pieces make this fast).</summary>
    public static Dictionary<int, long> CountGpt2Tokens(IEnumerable<KeyValuePair<string, long>> weightedTexts, Gpt2Tokenizer? gpt2 = null)
    {
        gpt2 ??= Gpt2Tokenizer.Shared;
        var counts = new Dictionary<int, long>();
        foreach (var (text, weight) in weightedTexts)
            foreach (var id in gpt2.Encode(text))
                counts[id] = counts.GetValueOrDefault(id) + weight;
        return counts;
    }

    /// <summary>True when GPT-2 id <paramref name="gpt2Id"/> has its own id here (bytes count as their own ids).</summary>
    public bool Contains(int gpt2Id) => _fromGpt2[gpt2Id] >= 0;

    /// <summary>Ids of <paramref name="text"/>; never special ids, whatever the text says.</summary>
    public int[] Encode(string text)
    {
        var result = new List<int>(text.Length / 3 + 4);
        foreach (var g in _gpt2.Encode(text)) AppendGpt2(g, result);
        return result.ToArray();
    }

    /// <summary>Appends the ids for one GPT-2 id: its own id, or its spelling under <see cref="Fallback"/>.</summary>
    public void AppendGpt2(int gpt2Id, List<int> output)
    {
        var id = _fromGpt2[gpt2Id];
        if (id >= 0) { output.Add(id); return; }
        if (Fallback == FallbackMode.Pieces) { output.AddRange(_spellings.GetOrAdd(gpt2Id, SpellInPieces)); return; }
        foreach (var b in _gpt2.TokenBytes(gpt2Id)) output.Add(ByteOffset + b);
    }

    // Fewest ids whose bytes concatenate to the token: a shortest path over byte positions, where a step is one
    // byte or one merged token. Ties keep the earliest split, so the spelling is deterministic.
    private int[] SpellInPieces(int gpt2Id)
    {
        var bytes = Encoding.Latin1.GetString(_gpt2.TokenBytes(gpt2Id));
        var cost = new int[bytes.Length + 1];
        var step = new int[bytes.Length + 1]; // sub id of the last piece ending at i
        var from = new int[bytes.Length + 1];
        Array.Fill(cost, int.MaxValue);
        cost[0] = 0;
        for (var i = 1; i <= bytes.Length; i++)
            for (var j = Math.Max(0, i - _longestMerged); j < i; j++)
            {
                if (cost[j] == int.MaxValue || cost[j] + 1 >= cost[i]) continue;
                var piece = i - j == 1 ? ByteOffset + bytes[j] : _mergedByBytes.GetValueOrDefault(bytes[j..i], -1);
                if (piece < 0) continue;
                (cost[i], step[i], from[i]) = (cost[j] + 1, piece, j);
            }
        var ids = new int[cost[bytes.Length]];
        for (int i = bytes.Length, k = ids.Length - 1; i > 0; i = from[i], k--) ids[k] = step[i];
        return ids;
    }

    /// <summary>Text of <paramref name="ids"/>; specials are written as their names unless skipped.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecials = false) => SpecialTokens.Decode(ids, skipSpecials, TokenBytes);

    /// <summary>The bytes of a non-special id.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        if (id < ByteOffset || id >= Size) throw new ArgumentOutOfRangeException(nameof(id), $"{id} is not a byte or merged id of this {Size}-id vocabulary");
        return id < FirstMergedId ? ByteValues.AsSpan(id - ByteOffset, 1) : _gpt2.TokenBytes(_merged[id - FirstMergedId]);
    }

    private static readonly byte[] ByteValues = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();

    /// <summary>Writes the vocabulary as a small JSON file (a training run stores it beside its checkpoint).</summary>
    public void Save(string path) => File.WriteAllText(path, ToJson());

    /// <summary>Writes <see cref="FileName"/> and the tokenizer descriptor into <paramref name="directory"/>.</summary>
    void ITextTokenizer.Save(string directory)
    {
        Directory.CreateDirectory(directory);
        Save(Path.Combine(directory, FileName));
        Tokenizers.WriteDescriptor(directory, this, [FileName]);
    }

    private string ToJson()
    {
        var json = new JsonObject
        {
            ["format"] = FormatName,
            ["version"] = 1,
            ["base"] = "gpt2",
            ["description"] = Description,
            ["size"] = Size,
            ["specials"] = new JsonArray(SpecialTokens.Names.Select(n => (JsonNode)n!).ToArray()),
            ["byteOffset"] = ByteOffset,
            ["fallback"] = Fallback.ToString().ToLowerInvariant(),
            ["mergedGpt2Ids"] = new JsonArray(_merged.Select(i => (JsonNode)i).ToArray()),
        };
        // Relaxed escaping keeps "<pad>" readable instead of "\u003Cpad\u003E".
        return json.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>Reads a file written by <see cref="Save"/>; refuses files whose special ids or layout differ from this code's.</summary>
    public static SubVocabulary Load(string path)
    {
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not JSON ({e.Message})", e); }
        string Fail(string what) => throw new InvalidDataException($"{path}: {what}");
        try
        {
            if ((string?)root["format"] != FormatName || (int?)root["version"] != 1) Fail($"not a {FormatName} v1 file");
            if ((string?)root["base"] != "gpt2") Fail("base tokenizer is not gpt2");
            var specials = root["specials"]!.AsArray().Select(n => (string?)n).ToArray();
            if (!specials.SequenceEqual(SpecialTokens.Names)) Fail("special tokens differ from SpecialTokens (ids are fixed in code)");
            if ((int?)root["byteOffset"] != ByteOffset) Fail($"byteOffset {(int?)root["byteOffset"]} != {ByteOffset}");
            if (!Enum.TryParse<FallbackMode>((string?)root["fallback"], ignoreCase: true, out var fallback))
                Fail($"fallback '{(string?)root["fallback"]}' is neither bytes nor pieces");
            var merged = root["mergedGpt2Ids"]!.AsArray().Select(n => (int)n!).ToArray();
            var vocab = new SubVocabulary(merged, (string?)root["description"] ?? "", fallback, Gpt2Tokenizer.Shared);
            if ((int?)root["size"] != vocab.Size) Fail($"size {(int?)root["size"]} does not match its {vocab.Size} ids");
            return vocab;
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: malformed vocabulary ({e.Message})", e);
        }
    }
}
