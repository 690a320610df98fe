using System.Text;

namespace DistTrain.Data.Tokenization;

/// <summary>Full GPT-2 BPE (50,257 ids) behind DistTrain's specials: id = <see cref="SpecialTokens.Count"/> + GPT-2 id.</summary>
/// <remarks>
/// GPT-2's own &lt;|endoftext|&gt; (id 50256) is never produced from text: the library's encoder isolates that text as
/// the special, so it is re-spelled as ordinary tokens (the pieces "&lt;|", "endoftext", "|&gt;"). Decoding joins
/// the exact bytes of every id before turning them into text, so a character split over two tokens survives.
/// </remarks>
public sealed class Gpt2TextTokenizer : ITextTokenizer
{
    private const int EndOfText = 50256;
    private static readonly Lazy<Gpt2TextTokenizer> SharedInstance = new(() => new Gpt2TextTokenizer(Gpt2Tokenizer.Shared));
    private readonly Gpt2Tokenizer _gpt2;
    private readonly int[] _endOfTextAsText;

    private Gpt2TextTokenizer(Gpt2Tokenizer gpt2)
    {
        _gpt2 = gpt2;
        _endOfTextAsText = new[] { "<|", "endoftext", "|>" }.SelectMany(gpt2.Encode).ToArray();
    }

    /// <summary>The process-wide instance.</summary>
    public static Gpt2TextTokenizer Shared => SharedInstance.Value;

    /// <inheritdoc/>
    public string Kind => "gpt2";
    /// <inheritdoc/>
    public string Identity => "gpt2";
    /// <inheritdoc/>
    public int Size => SpecialTokens.Count + _gpt2.VocabularySize;

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        var gpt2 = _gpt2.Encode(text);
        var ids = new List<int>(gpt2.Count);
        foreach (var g in gpt2)
        {
            if (g == EndOfText) foreach (var e in _endOfTextAsText) ids.Add(SpecialTokens.Count + e);
            else ids.Add(SpecialTokens.Count + g);
        }
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids, bool skipSpecials = false) => SpecialTokens.Decode(ids, skipSpecials, id =>
        id < SpecialTokens.Count || id >= Size
            ? throw new ArgumentOutOfRangeException(nameof(ids), $"{id} is not an id of the {Size}-id gpt2 tokenizer")
            : _gpt2.TokenBytes(id - SpecialTokens.Count));

    /// <inheritdoc/>
    public void Save(string directory) => Tokenizers.WriteDescriptor(directory, this, files: []);
}
