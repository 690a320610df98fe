namespace DistTrain.Training.Evaluation;

/// <summary>
/// The baseline a language model must beat: token frequencies of the training split with add-one smoothing
/// over the same vocabulary, scored on the same target tokens as the model.
/// </summary>
public sealed class UnigramBaseline
{
    private readonly double[] _logProb;

    private UnigramBaseline(double[] logProb) => _logProb = logProb;

    /// <summary>The metric an objective's baselines report it under.</summary>
    public const string MetricName = "unigram_perplexity";

    /// <summary>Most training sequences a baseline is fitted on: a unigram estimate is settled long before (100,000
    /// sequences of 64 are 6.4M tokens), and a corpus far larger than memory must not be read whole at the first
    /// evaluation. The Brown sets (about 20,000) are read whole.</summary>
    public const int MaxFitSequences = 100_000;

    /// <summary>An objective's baselines: fitted on <paramref name="train"/> (its first <see cref="MaxFitSequences"/>), scored on
    /// <paramref name="validation"/>, the targets the model is scored on.</summary>
    public static IReadOnlyDictionary<string, double> Metrics(IEnumerable<IReadOnlyList<int>> train, IEnumerable<IReadOnlyList<int>> validation, int vocabSize) =>
        new Dictionary<string, double> { [MetricName] = Fit(train.Take(MaxFitSequences), vocabSize).Perplexity(validation) };

    /// <summary>Counts every token of <paramref name="targets"/> except those in <paramref name="ignore"/> (padding, specials).</summary>
    public static UnigramBaseline Fit(IEnumerable<IReadOnlyList<int>> targets, int vocabSize, IReadOnlySet<int>? ignore = null)
    {
        var counts = new long[vocabSize];
        long total = 0;
        foreach (var seq in targets)
            foreach (int t in seq)
                if (ignore is null || !ignore.Contains(t)) { counts[t]++; total++; }
        var logProb = new double[vocabSize];
        double denom = Math.Log(total + vocabSize);
        for (int i = 0; i < vocabSize; i++) logProb[i] = Math.Log(counts[i] + 1) - denom;
        return new UnigramBaseline(logProb);
    }

    /// <summary>exp of the mean negative log-likelihood per target token.</summary>
    public double Perplexity(IEnumerable<IReadOnlyList<int>> targets, IReadOnlySet<int>? ignore = null)
    {
        double nll = 0;
        long n = 0;
        foreach (var seq in targets)
            foreach (int t in seq)
                if (ignore is null || !ignore.Contains(t)) { nll -= _logProb[t]; n++; }
        if (n == 0) throw new ArgumentException("no target tokens to score", nameof(targets));
        return Math.Exp(nll / n);
    }
}
