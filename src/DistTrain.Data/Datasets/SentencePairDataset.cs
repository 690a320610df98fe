using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Which sentence-pair objective a <see cref="SentencePairDataset"/> serves.</summary>
public enum SentencePairTask
{
    /// <summary>BERT's next-sentence prediction: B is the real next sentence (label 1) or a sentence of another document (0).</summary>
    NextSentence,

    /// <summary>ALBERT's sentence-order prediction: two consecutive sentences in order (label 1) or swapped (0).</summary>
    SentenceOrder,
}

/// <summary>Sentence pairs for NSP or SOP, 50% positive, one example per pair of consecutive sentences.</summary>
public sealed class SentencePairDataset : IIndexedDataset<SentencePairExample>
{
    private readonly EncodedCorpus _corpus;
    private readonly (int Doc, int Sentence)[] _anchors;
    private readonly ulong _seed;

    /// <summary>Pairs from <paramref name="corpus"/>; sequences are cut (longest segment first) to <paramref name="maxLength"/>.</summary>
    public SentencePairDataset(EncodedCorpus corpus, SentencePairTask task, int maxLength, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 5);
        if (task == SentencePairTask.NextSentence && corpus.Documents.Count < 2)
            throw new ArgumentException("next-sentence negatives need at least two documents", nameof(corpus));
        _corpus = corpus;
        Task = task;
        MaxLength = maxLength;
        _seed = seed ^ SeededRandom.Hash(task.ToString());
        _anchors = corpus.Documents
            .SelectMany((d, di) => Enumerable.Range(0, Math.Max(0, d.Sentences.Count - 1)).Select(s => (di, s)))
            .ToArray();
    }

    /// <summary>NSP or SOP.</summary>
    public SentencePairTask Task { get; }

    /// <summary>Upper bound on InputIds.Length.</summary>
    public int MaxLength { get; }

    /// <inheritdoc/>
    public int Count => _anchors.Length;

    /// <inheritdoc/>
    public SentencePairExample this[int index]
    {
        get
        {
            var (d, s) = _anchors[index];
            var rng = SeededRandom.For(_seed, (ulong)index);
            var positive = rng.NextDouble() < 0.5;
            var docs = _corpus.Documents;
            int[] a = docs[d].Sentences[s].Ids, b = docs[d].Sentences[s + 1].Ids;
            if (!positive && Task == SentencePairTask.SentenceOrder) (a, b) = (b, a);
            if (!positive && Task == SentencePairTask.NextSentence)
            {
                // Any document but this one: drawing from 0..n-2 and skipping d keeps the draw uniform.
                var other = rng.Next(docs.Count - 1);
                if (other >= d) other++;
                var sentences = docs[other].Sentences;
                b = sentences[rng.Next(sentences.Count)].Ids;
            }
            return Build(a, b, positive ? 1 : 0);
        }
    }

    private SentencePairExample Build(int[] a, int[] b, int label)
    {
        // Longest-first truncation as in BERT: trim whichever segment is longer until [cls] A [sep] B [sep] fits.
        int la = a.Length, lb = b.Length;
        while (la + lb + 3 > MaxLength)
        {
            if (la >= lb) la--; else lb--;
        }
        var ids = new int[la + lb + 3];
        var segments = new int[ids.Length];
        ids[0] = SpecialTokens.Cls;
        a.AsSpan(0, la).CopyTo(ids.AsSpan(1));
        ids[la + 1] = SpecialTokens.Sep;
        b.AsSpan(0, lb).CopyTo(ids.AsSpan(la + 2));
        ids[^1] = SpecialTokens.Sep;
        segments.AsSpan(la + 2).Fill(1);
        return new SentencePairExample(ids, segments, label);
    }
}
