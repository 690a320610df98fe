using DistTrain.Data;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Objectives;

/// <summary>
/// XLNet's factorisation orders: a uniformly random order of a sequence's real positions, drawn anew for every example
/// and epoch (a pure function of seed, epoch and example, like <see cref="MlmMasking"/>). The last 1/K of the order are
/// the targets; special tokens are never targets.
/// </summary>
public static class Permutations
{
    public const int Ignore = -100;

    /// <summary>ids[0..length) are real → ranks (position i is the ranks[i]-th of the order) and labels (id at targets, −100 elsewhere).</summary>
    public static (int[] Ranks, int[] Labels) Sample(int[] ids, int length, int k, ulong seed, int epoch, int example)
    {
        var rng = SeededRandom.For(seed ^ (ulong)epoch * 0x9E3779B97F4A7C15UL, (ulong)example, stream: 0x504C4D);   // "PLM"
        var order = Enumerable.Range(0, length).ToArray();
        rng.Shuffle(order);
        var ranks = new int[length];
        for (int r = 0; r < length; r++) ranks[order[r]] = r;
        // At least one target; the first position of the order (which sees nothing) never is one when k ≥ 2 and length ≥ 2.
        int cut = length - Math.Max(1, length / k);
        var labels = new int[length];
        for (int i = 0; i < length; i++) labels[i] = ranks[i] >= cut && !SpecialTokens.IsSpecial(ids[i]) ? ids[i] : Ignore;
        return (ranks, labels);
    }
}

/// <summary>
/// T5's span corruption (Raffel et al. 2020, §3.1.4): of the n tokens between [bos] and [eos], round(n·density) are noise,
/// cut into round(noise / meanSpan) spans (at most 32, one sentinel each) at random boundaries, interleaved with as many
/// runs of kept tokens. Input: [bos] kept tokens with each span replaced by its sentinel [eos]; target: each sentinel
/// followed by its span, then [eos]. A pure function of (seed, epoch, example).
/// </summary>
public static class SpanCorruption
{
    /// <summary>tokens: the real ids of one sequence ([bos] … [eos]) → (encoder input, decoder target).</summary>
    public static (int[] Input, int[] Target) Apply(int[] tokens, double density, double meanSpan, ulong seed, int epoch, int example)
    {
        bool framed = tokens.Length >= 2 && tokens[0] == SpecialTokens.Bos && tokens[^1] == SpecialTokens.Eos;
        var body = framed ? tokens[1..^1] : tokens;
        int n = body.Length;
        if (n < 2) return (tokens, [SpecialTokens.Eos]);
        var rng = SeededRandom.For(seed ^ (ulong)epoch * 0x9E3779B97F4A7C15UL, (ulong)example, stream: 0x5350414E);   // "SPAN"
        var (noise, cut) = new Contracts.Specs.SpanCorruptionSpec(density, meanSpan).Cut(n);
        int spans = Math.Min(SpecialTokens.SentinelCount, cut);
        var noiseLengths = Segment(noise, spans, ref rng);
        var keptLengths = Segment(n - noise, spans, ref rng);
        var input = new List<int>(n + spans + 2);
        var target = new List<int>(noise + spans + 1);
        if (framed) input.Add(SpecialTokens.Bos);
        int at = 0;
        for (int s = 0; s < spans; s++)
        {
            input.AddRange(body.AsSpan(at, keptLengths[s]));
            at += keptLengths[s];
            input.Add(SpecialTokens.Sentinel(s));
            target.Add(SpecialTokens.Sentinel(s));
            target.AddRange(body.AsSpan(at, noiseLengths[s]));
            at += noiseLengths[s];
        }
        if (framed) input.Add(SpecialTokens.Eos);
        target.Add(SpecialTokens.Eos);
        return (input.ToArray(), target.ToArray());
    }

    /// <summary>total split into parts positive lengths at parts − 1 distinct random cut points (T5's random segmentation).</summary>
    private static int[] Segment(int total, int parts, ref SeededRandom rng)
    {
        var cuts = Enumerable.Range(1, total - 1).ToArray();
        rng.Shuffle(cuts);
        var chosen = cuts.Take(parts - 1).Order().Append(total).ToArray();
        var lengths = new int[parts];
        int previous = 0;
        for (int i = 0; i < parts; i++) { lengths[i] = chosen[i] - previous; previous = chosen[i]; }
        return lengths;
    }
}
