using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>A loss as the SUM over contributing targets and their COUNT, so the trainer can divide by the count summed over micro-batches and ranks.</summary>
/// <remarks>
/// Why not a mean: averaging per-micro-batch means weights a micro-batch with 3 targets like one with 300, which is the
/// gradient-accumulation bug Hugging Face shipped. Metrics are sums too (e.g. "correct"), so they all-reduce by addition.
/// A composite objective (BERT MLM + pair, ELECTRA MLM + λ·RTD) keeps its <see cref="Parts"/>; see <see cref="Combine"/>.
/// </remarks>
public sealed record LossTerms(Tensor Sum, long Count)
{
    /// <summary>Additive side statistics for this micro-batch (counts of correct predictions, per-part sums, …).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>The weighted sub-objectives of a composite loss; empty for a single term.</summary>
    public IReadOnlyList<LossPart> Parts { get; init; } = [];

    /// <summary>Sum / Count for this micro-batch alone (zero when nothing contributed): logging and single-process training.</summary>
    public Tensor LocalMean()
    {
        if (Count == 0) return Sum * Scalars.ZeroReal;
        using var count = ((double)Count).ToScalar();
        return Sum / count;
    }

    /// <summary>
    /// The exact objective given global counts: one per part for a composite (Σ wᵢ·Sumᵢ / Gᵢ), else one for the term (Sum / G).
    /// Each Gᵢ is that part's Count summed over every micro-batch and rank of the step.
    /// </summary>
    public Tensor Normalize(IReadOnlyList<long> globalCounts)
    {
        int expected = Parts.Count == 0 ? 1 : Parts.Count;
        if (globalCounts.Count != expected)
            throw new ArgumentException($"expected {expected} global count(s), got {globalCounts.Count}.", nameof(globalCounts));
        if (Parts.Count == 0)
        {
            using var global = ((double)Math.Max(1, globalCounts[0])).ToScalar();
            return Sum / global;
        }
        Tensor total = Parts[0].Terms.Sum * Scalars.ZeroReal;
        for (int i = 0; i < Parts.Count; i++)
        {
            using var weight = (Parts[i].Weight / Math.Max(1, globalCounts[i])).ToScalar();
            total = total.add(Parts[i].Terms.Sum * weight, Scalars.One);
        }
        return total;
    }

    /// <summary>
    /// Combines parts that have different target counts. Count is the FIRST part's count (the anchor) and Sum is
    /// Σ wᵢ·Sumᵢ·(Count_anchor / Countᵢ), so Sum / Count equals Σ wᵢ·meanᵢ on this micro-batch.
    /// </summary>
    /// <remarks>
    /// A trainer that all-reduces only the top-level Count gets each part re-weighted by this micro-batch's count ratio:
    /// exact when the ratio is the same everywhere, close when it is similar (mask rate, batch shape). A trainer that
    /// all-reduces every part's Count and calls <see cref="Normalize"/> gets the exact Σ wᵢ·(global meanᵢ).
    /// Metrics are kept with the part name as prefix, plus "{name}.sum" and "{name}.count".
    /// </remarks>
    public static LossTerms Combine(params LossPart[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("at least one part is required.", nameof(parts));
        long anchor = parts[0].Terms.Count;
        Tensor sum = parts[0].Terms.Sum * Scalars.ZeroReal;
        foreach (var part in parts)
        {
            if (part.Terms.Count > 0 && anchor > 0)
            {
                using var weight = (part.Weight * anchor / part.Terms.Count).ToScalar();
                sum = sum.add(part.Terms.Sum * weight, Scalars.One);
            }
        }
        return new LossTerms(sum, anchor) { Parts = parts, Metrics = new DeferredMetrics(() =>
        {
            var metrics = new Dictionary<string, double>();
            foreach (var part in parts)
            {
                metrics[$"{part.Name}.sum"] = Scalar(part.Terms.Sum);
                metrics[$"{part.Name}.count"] = part.Terms.Count;
                foreach (var (key, value) in part.Terms.Metrics) metrics[$"{part.Name}.{key}"] = value;
            }
            return metrics;
        }) };
    }

    internal static long CountOf(Tensor mask) => mask.sum().cpu().item<long>();

    internal static double Scalar(Tensor t) => t.detach().to(ScalarType.Float64).cpu().item<double>();
}

/// <summary>
/// Metrics computed on first read, not when the loss is built. Training never reads them (only evaluation does), and
/// for a language model "correct" is an argmax over the whole (N, V) logits plus a device sync: 7% of a worker's step
/// in a profile. Read them inside the dispose scope of the micro-batch whose tensors they come from.
/// </summary>
public sealed class DeferredMetrics(Func<Dictionary<string, double>> compute) : IReadOnlyDictionary<string, double>
{
    private Dictionary<string, double>? _values;
    private Dictionary<string, double> Values => _values ??= compute();

    public double this[string key] => Values[key];
    public IEnumerable<string> Keys => Values.Keys;
    IEnumerable<double> IReadOnlyDictionary<string, double>.Values => Values.Values;
    public int Count => Values.Count;
    public bool ContainsKey(string key) => Values.ContainsKey(key);
    public bool TryGetValue(string key, out double value) => Values.TryGetValue(key, out value);
    public IEnumerator<KeyValuePair<string, double>> GetEnumerator() => Values.GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>One named, weighted term of a composite loss.</summary>
public sealed record LossPart(string Name, double Weight, LossTerms Terms);
