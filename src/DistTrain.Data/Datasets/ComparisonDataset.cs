using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Preference pairs for reward models and DPO: real corpus text (chosen) against a corrupted copy (rejected).</summary>
/// <remarks>
/// The corruption is drawn per example from the seed: shuffled words, two consecutive sentences swapped, or
/// about a quarter of the words dropped. Every pair is checked to differ; shuffles that change nothing fall
/// back to dropping words, which always changes the text.
/// </remarks>
public sealed class ComparisonDataset : IIndexedDataset<ComparisonExample>
{
    private readonly EncodedCorpus _corpus;
    private readonly (int Doc, int Sentence)[] _anchors;
    private readonly ulong _seed;

    /// <summary>One pair per sentence of 4 to 48 words that has a next sentence in its document.</summary>
    public ComparisonDataset(EncodedCorpus corpus, ulong seed)
    {
        _corpus = corpus;
        _seed = seed ^ SeededRandom.Hash("comparison");
        _anchors = corpus.Documents
            .SelectMany((d, di) => Enumerable.Range(0, Math.Max(0, d.Sentences.Count - 1))
                .Where(si => d.Sentences[si].Source.Words.Count is >= 4 and <= InstructionDataset.MaxWords)
                .Select(si => (di, si)))
            .ToArray();
    }

    /// <inheritdoc/>
    public int Count => _anchors.Length;

    /// <inheritdoc/>
    public ComparisonExample this[int index]
    {
        get
        {
            var (d, s) = _anchors[index];
            var sentences = _corpus.Documents[d].Source.Sentences;
            var rng = SeededRandom.For(_seed, (ulong)index);
            var kind = (CorruptionKind)rng.Next(3);
            string chosen, rejected;
            if (kind == CorruptionKind.SwappedSentences)
            {
                chosen = Detokenizer.Detokenize([sentences[s], sentences[s + 1]]);
                rejected = Detokenizer.Detokenize([sentences[s + 1], sentences[s]]);
            }
            else
            {
                chosen = sentences[s].Text;
                rejected = kind == CorruptionKind.ShuffledWords ? Shuffle(sentences[s], ref rng) : Drop(sentences[s], ref rng);
            }
            if (rejected == chosen)
            {
                // Identical sentences swapped, or a shuffle that restored the order: drop words instead.
                kind = CorruptionKind.DroppedWords;
                chosen = sentences[s].Text;
                rejected = Drop(sentences[s], ref rng);
            }
            var vocab = _corpus.Vocabulary;
            return new ComparisonExample([SpecialTokens.Bos, .. vocab.Encode(chosen), SpecialTokens.Eos],
                                         [SpecialTokens.Bos, .. vocab.Encode(rejected), SpecialTokens.Eos],
                                         kind, chosen, rejected);
        }
    }

    private static string Shuffle(TaggedSentence sentence, ref SeededRandom rng)
    {
        var words = sentence.Words.ToArray();
        rng.Shuffle(words);
        return new TaggedSentence(words).Text;
    }

    private static string Drop(TaggedSentence sentence, ref SeededRandom rng)
    {
        var n = sentence.Words.Count;
        var keep = new bool[n];
        for (var i = 0; i < n; i++) keep[i] = rng.NextDouble() >= 0.25;
        // At least one word goes and at least two stay, so the text always changes and is not empty.
        keep[rng.Next(n)] = false;
        for (var i = 0; keep.Count(k => k) < 2; i++) keep[i] = true;
        return new TaggedSentence(sentence.Words.Where((_, i) => keep[i]).ToArray()).Text;
    }
}
