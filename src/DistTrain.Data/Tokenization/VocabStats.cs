using DistTrain.Data.Corpora;

namespace DistTrain.Data.Tokenization;

/// <summary>What a sub-vocabulary saves and costs against full GPT-2 on some documents (figures for docs/data.md).</summary>
/// <param name="Gpt2Tokens">GPT-2 tokens in the documents.</param>
/// <param name="FallbackGpt2Tokens">Of those, tokens not in the sub-vocabulary (spelled as bytes).</param>
/// <param name="SubTokens">Tokens the sub-vocabulary produces for the same text.</param>
/// <param name="DistinctGpt2Ids">Distinct GPT-2 ids the documents use.</param>
public sealed record VocabStats(long Gpt2Tokens, long FallbackGpt2Tokens, long SubTokens, int DistinctGpt2Ids)
{
    /// <summary>Share of GPT-2 tokens that needed byte fallback.</summary>
    public double FallbackShare => (double)FallbackGpt2Tokens / Gpt2Tokens;

    /// <summary>Sequence-length growth: sub-vocabulary tokens per GPT-2 token (1.0 = none).</summary>
    public double LengthGrowth => (double)SubTokens / Gpt2Tokens;

    /// <summary>Parameters of the input embedding plus an untied output softmax with bias: 2·V·H + V.</summary>
    public static long EmbeddingAndSoftmaxParameters(int vocabularySize, int hidden) => 2L * vocabularySize * hidden + vocabularySize;

    /// <summary>Measures <paramref name="vocabulary"/> on <paramref name="documents"/>, tokenized as the datasets do.</summary>
    public static VocabStats Measure(SubVocabulary vocabulary, IEnumerable<CorpusDocument> documents)
    {
        var gpt2 = Gpt2Tokenizer.Shared;
        long total = 0, fallback = 0, sub = 0;
        var distinct = new HashSet<int>();
        var scratch = new List<int>();
        foreach (var (piece, count) in CorpusVocabulary.PieceCounts(documents))
        {
            foreach (var id in gpt2.Encode(piece))
            {
                distinct.Add(id);
                total += count;
                if (!vocabulary.Contains(id)) fallback += count;
                scratch.Clear();
                vocabulary.AppendGpt2(id, scratch);
                sub += count * scratch.Count;
            }
        }
        return new VocabStats(total, fallback, sub, distinct.Count);
    }
}
