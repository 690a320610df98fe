using System.Text;

namespace DistTrain.Data.Tokenization;

/// <summary>The bytes a tokenizer's non-special id stands for (it throws for an id it does not have).</summary>
public delegate ReadOnlySpan<byte> TokenBytes(int id);

/// <summary>The fixed special-token ids of every <see cref="SubVocabulary"/>; plain text never encodes to them.</summary>
/// <remarks>
/// There is no unk: every string falls back to byte tokens, so nothing is unknown. The 32 sentinels are
/// T5's span-corruption markers (&lt;extra_id_0&gt; … &lt;extra_id_31&gt;).
/// </remarks>
public static class SpecialTokens
{
    public const int Pad = 0;
    public const int Bos = 1;
    public const int Eos = 2;
    public const int Cls = 3;
    public const int Sep = 4;
    public const int Mask = 5;
    public const int FirstSentinel = 6;
    public const int SentinelCount = 32;

    /// <summary>Number of special ids (0 … Count-1).</summary>
    public const int Count = FirstSentinel + SentinelCount;

    /// <summary>Names by id, as written in a vocabulary file and by Decode when specials are rendered.</summary>
    public static IReadOnlyList<string> Names { get; } =
        new[] { "<pad>", "<bos>", "<eos>", "<cls>", "<sep>", "<mask>" }
            .Concat(Enumerable.Range(0, SentinelCount).Select(i => $"<extra_id_{i}>"))
            .ToArray();

    /// <summary>Id of sentinel <paramref name="n"/> (&lt;extra_id_n&gt;).</summary>
    public static int Sentinel(int n) =>
        n is >= 0 and < SentinelCount ? FirstSentinel + n : throw new ArgumentOutOfRangeException(nameof(n));

    /// <summary>True for the special ids.</summary>
    public static bool IsSpecial(int id) => id is >= 0 and < Count;

    /// <summary>
    /// Text of <paramref name="ids"/>: specials as their names (or nothing when skipped), every other id as its bytes.
    /// The bytes are joined before decoding, since a character may be spread over several tokens. Every tokenizer decodes so.
    /// </summary>
    public static string Decode(IEnumerable<int> ids, bool skipSpecials, TokenBytes bytesOf)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (IsSpecial(id))
            {
                if (!skipSpecials) bytes.AddRange(Encoding.UTF8.GetBytes(Names[id]));
            }
            else bytes.AddRange(bytesOf(id));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
