using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace DistTrain.Data.Tokenization;

/// <summary>A BERT-style WordPiece vocabulary (vocab.txt, one token a line; BERT, ELECTRA) behind DistTrain's specials.</summary>
/// <remarks>
/// id = <see cref="SpecialTokens.Count"/> + the token's line number. Encoding is Microsoft.ML.Tokenizers' BertTokenizer
/// (BERT's basic tokenization: clean-up, CJK split, punctuation split, lowercasing and accent stripping when the vocabulary
/// is uncased, then greedy longest-match WordPiece with "##" continuations and [UNK] for a word it cannot spell). The
/// file's own [CLS]/[SEP]/[MASK]/[PAD] are never produced from text (DistTrain's datasets add their own specials). Casing
/// comes from tokenizer_config.json's do_lower_case beside vocab.txt (true when absent, as in transformers).
/// Unlike byte-level BPE, decoding is not exact: it gives the lowercased, re-spaced words, which is all WordPiece keeps.
/// </remarks>
public sealed class WordPieceTextTokenizer : ITextTokenizer
{
    private const string VocabFile = "vocab.txt";
    private const string ConfigFile = "tokenizer_config.json";

    private readonly BertTokenizer _inner;
    private readonly string[] _tokens;

    private WordPieceTextTokenizer(string vocabPath, bool lowercase)
    {
        _tokens = File.ReadAllLines(vocabPath).Select(l => l.TrimEnd('\r')).ToArray();
        if (_tokens.Length == 0) throw new InvalidDataException($"{vocabPath}: empty vocabulary");
        if (!_tokens.Contains("[UNK]")) throw new InvalidDataException($"{vocabPath}: no [UNK] token; not a BERT WordPiece vocabulary");
        Lowercase = lowercase;
        _inner = BertTokenizer.Create(vocabPath, new BertOptions
        {
            LowerCaseBeforeTokenization = lowercase,
            RemoveNonSpacingMarks = lowercase,      // transformers strips accents exactly when it lowercases (strip_accents unset)
            ApplyBasicTokenization = true,
            SplitOnSpecialTokens = false,           // "[CLS]" in text is text, never the special
            IndividuallyTokenizeCjk = true,
        });
        Size = SpecialTokens.Count + _tokens.Length;
        var canonical = new StringBuilder("disttrain-wordpiece-v1\n").Append(lowercase ? "lowercase\n" : "cased\n");
        foreach (var t in _tokens) canonical.Append(t).Append('\n');
        Identity = "wordpiece:sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
    }

    /// <inheritdoc/>
    public string Kind => "wordpiece";
    /// <inheritdoc/>
    public string Identity { get; }
    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>Text is lowercased and its accents stripped before WordPiece (an uncased vocabulary).</summary>
    public bool Lowercase { get; }

    /// <summary>Reads a directory with vocab.txt (and optionally tokenizer_config.json for do_lower_case).</summary>
    public static WordPieceTextTokenizer FromDirectory(string directory)
    {
        var config = Path.Combine(directory, ConfigFile);
        bool lowercase = true;
        if (File.Exists(config) && JsonNode.Parse(File.ReadAllText(config)) is JsonObject o && o["do_lower_case"] is JsonValue v)
            lowercase = (bool)v;
        return new WordPieceTextTokenizer(Path.Combine(directory, VocabFile), lowercase);
    }

    /// <summary>True when an HF tokenizers tokenizer.json's model is WordPiece (its vocabulary is the folder's vocab.txt).</summary>
    public static bool IsWordPieceJson(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path))?["model"]?["type"]?.GetValue<string>() == "WordPiece"; }
        catch (System.Text.Json.JsonException) { return false; }
    }

    internal static WordPieceTextTokenizer LoadSaved(string directory, JsonObject descriptor) =>
        new(Path.Combine(directory, VocabFile), descriptor["lowercase"] is JsonValue v && (bool)v);

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        var ids = _inner.EncodeToIds(text, addSpecialTokens: false);
        var result = new int[ids.Count];
        for (var i = 0; i < result.Length; i++) result[i] = SpecialTokens.Count + ids[i];
        return result;
    }

    /// <inheritdoc/>
    /// <remarks>A "##" piece joins the word before it; every other token starts a new, space-separated word.</remarks>
    public string Decode(IEnumerable<int> ids, bool skipSpecials = false) => SpecialTokens.Decode(ids, skipSpecials, id =>
    {
        var index = id - SpecialTokens.Count;
        if (index < 0 || index >= _tokens.Length)
            throw new ArgumentOutOfRangeException(nameof(ids), $"{id} is not an id of this {Size}-id wordpiece tokenizer");
        var token = _tokens[index];
        return Encoding.UTF8.GetBytes(token.StartsWith("##", StringComparison.Ordinal) ? token[2..] : " " + token);
    }).TrimStart(' ');

    /// <inheritdoc/>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllLines(Path.Combine(directory, VocabFile), _tokens);
        // transformers' own file, so the folder also loads there with the same casing.
        File.WriteAllText(Path.Combine(directory, ConfigFile),
            new JsonObject { ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = Lowercase }.ToJsonString() + "\n");
        Tokenizers.WriteDescriptor(directory, this, [VocabFile, ConfigFile], new JsonObject { ["lowercase"] = Lowercase });
    }
}
