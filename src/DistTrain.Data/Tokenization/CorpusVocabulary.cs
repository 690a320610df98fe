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
}
