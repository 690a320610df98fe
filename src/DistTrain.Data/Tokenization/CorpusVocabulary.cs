using System.Text.RegularExpressions;
using DistTrain.Data.Corpora;

namespace DistTrain.Data.Tokenization;

/// <summary>Builds a <see cref="SubVocabulary"/> from corpus documents, tokenized exactly as the datasets tokenize them.</summary>
public static class CorpusVocabulary
{
    /// <summary>The default model vocabulary size (specials + bytes + 7898 merged tokens).</summary>
    public const int DefaultSize = 8192;

    /// <summary>The sub-vocabulary of the <paramref name="train"/> documents (pass the train split only, never held-out text).</summary>
    public static SubVocabulary Build(IEnumerable<CorpusDocument> train, int targetSize = DefaultSize,
                                      FallbackMode fallback = FallbackMode.Bytes, string? description = null)
    {
        var docs = train.ToList();
        var counts = SubVocabulary.CountGpt2Tokens(PieceCounts(docs));
        return SubVocabulary.FromCounts(counts, targetSize,
            description ?? $"GPT-2 subset, {targetSize} ids, from {docs.Count} Brown documents", fallback);
    }

    /// <summary>Each distinct word piece (word with its leading space, see <see cref="Detokenizer.Pieces"/>) and its count.</summary>
    /// <remarks>GPT-2 never merges across a space, so encoding piece by piece is how the datasets encode; counting
    /// distinct pieces turns 1.16M encoder calls into about 100k.</remarks>
    public static Dictionary<string, long> PieceCounts(IEnumerable<CorpusDocument> documents)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var doc in documents)
            for (var s = 0; s < doc.Sentences.Count; s++)
                foreach (var piece in Detokenizer.Pieces(doc.Sentences[s], leadingSpace: s > 0))
                    counts[piece] = counts.GetValueOrDefault(piece) + 1;
        return counts;
    }

    /// <summary>The sub-vocabulary of a user's training texts (pass the train split only, never held-out text).</summary>
    /// <remarks>
    /// Texts are cut the way GPT-2 pre-tokenizes (<see cref="BpeTextTokenizer.Gpt2Pattern"/>) and only distinct pieces
    /// go through the BPE, each weighted by its count: on 10 MB of English that is about 100k encoder calls, not 2M.
    /// Memory grows with the number of distinct pieces, not with the text.
    /// </remarks>
    public static SubVocabulary FromTexts(IEnumerable<string> texts, int targetSize = DefaultSize,
                                          FallbackMode fallback = FallbackMode.Bytes, string? description = null)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        long documents = 0;
        foreach (var text in texts)
        {
            documents++;
            foreach (var match in Gpt2Pieces.EnumerateMatches(text))
            {
                var piece = text.AsSpan(match.Index, match.Length);
                if (lookup.TryGetValue(piece, out var n)) lookup[piece] = n + 1;
                else lookup[piece] = 1;
            }
        }
        return SubVocabulary.FromCounts(SubVocabulary.CountGpt2Tokens(counts), targetSize,
            description ?? $"GPT-2 subset, {targetSize} ids, from {documents} training texts", fallback);
    }

    private static readonly Regex Gpt2Pieces = new(BpeTextTokenizer.Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
}
