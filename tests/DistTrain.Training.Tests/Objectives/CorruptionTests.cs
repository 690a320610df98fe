using DistTrain.Data.Tokenization;
using DistTrain.Training.Objectives;

namespace DistTrain.Training.Tests.ObjectiveTests;   // not ".Objectives": that would shadow DistTrain.Training.Objectives here

/// <summary>The data side of XLNet's and T5's objectives: factorisation orders and span corruption, checked on many draws.</summary>
public sealed class CorruptionTests
{
    private static int[] Sequence(int n) => [SpecialTokens.Bos, .. Enumerable.Range(0, n - 2).Select(i => 400 + i), SpecialTokens.Eos];

    private static bool IsSentinel(int t) => t is >= SpecialTokens.FirstSentinel and < SpecialTokens.Count;

    [Fact]
    public void Permutation_ranks_are_an_order_and_its_last_1_over_k_are_the_targets()
    {
        var ids = Sequence(60);
        for (int example = 0; example < 200; example++)
        {
            var (ranks, labels) = Permutations.Sample(ids, ids.Length, k: 6, seed: 7, epoch: 0, example);
            Assert.Equal(Enumerable.Range(0, 60), ranks.Order());
            int cut = 60 - 60 / 6;
            for (int i = 0; i < 60; i++)
            {
                bool target = ranks[i] >= cut && !SpecialTokens.IsSpecial(ids[i]);
                Assert.Equal(target ? ids[i] : Permutations.Ignore, labels[i]);
            }
            Assert.InRange(labels.Count(l => l != Permutations.Ignore), 60 / 6 - 2, 60 / 6);
        }
    }

    [Fact]
    public void Orders_are_a_function_of_seed_epoch_and_example()
    {
        var ids = Sequence(30);
        var a = Permutations.Sample(ids, 30, 6, 7, 1, 5).Ranks;
        Assert.Equal(a, Permutations.Sample(ids, 30, 6, 7, 1, 5).Ranks);
        Assert.NotEqual(a, Permutations.Sample(ids, 30, 6, 7, 2, 5).Ranks);
        Assert.NotEqual(a, Permutations.Sample(ids, 30, 6, 7, 1, 6).Ranks);
    }

    [Fact]
    public void Span_corruption_input_and_target_rebuild_the_text_with_the_planned_noise()
    {
        var tokens = Sequence(66);                                 // 64 tokens between bos and eos
        for (int example = 0; example < 200; example++)
        {
            var (input, target) = SpanCorruption.Apply(tokens, 0.15, 3, seed: 11, epoch: 0, example);
            Assert.Equal(SpecialTokens.Bos, input[0]);
            Assert.Equal(SpecialTokens.Eos, input[^1]);
            Assert.Equal(SpecialTokens.Eos, target[^1]);
            // round(64 · 0.15) = 10 noise tokens in round(10 / 3) = 3 spans, sentinels in order 0, 1, 2 on both sides.
            var sentinels = input.Where(IsSentinel).ToArray();
            Assert.Equal([SpecialTokens.Sentinel(0), SpecialTokens.Sentinel(1), SpecialTokens.Sentinel(2)], sentinels);
            Assert.Equal(sentinels, target.Where(IsSentinel));
            Assert.Equal(10, target.Length - sentinels.Length - 1);
            // Spans never touch: a kept token stands before every sentinel of the input.
            for (int i = 1; i < input.Length; i++)
                if (IsSentinel(input[i])) Assert.False(SpecialTokens.IsSpecial(input[i - 1]) && input[i - 1] != SpecialTokens.Bos);
            // Putting each span back where its sentinel stands gives the original text.
            Assert.Equal(tokens, Rebuild(input, target));
        }
    }

    [Fact]
    public void Span_lengths_average_the_mean_span()
    {
        var tokens = Sequence(302);
        long noise = 0, spans = 0;
        for (int example = 0; example < 100; example++)
        {
            var (_, target) = SpanCorruption.Apply(tokens, 0.15, 3, 5, 0, example);
            spans += target.Count(IsSentinel);
            noise += target.Length - 1 - target.Count(IsSentinel);
        }
        Assert.Equal(3.0, (double)noise / spans, precision: 1);   // round(300 · 0.15) = 45 tokens in 15 spans
    }

    [Fact]
    public void Span_corruption_never_uses_more_sentinels_than_exist()
    {
        var tokens = Sequence(1002);
        var (input, target) = SpanCorruption.Apply(tokens, 0.5, 1, 3, 0, 0);
        Assert.Equal(SpecialTokens.SentinelCount, input.Count(IsSentinel));
        Assert.Equal(tokens, Rebuild(input, target));
    }

    private static int[] Rebuild(int[] input, int[] target)
    {
        var spans = new Dictionary<int, List<int>>();
        List<int>? current = null;
        foreach (int t in target[..^1])
            if (IsSentinel(t)) spans[t] = current = [];
            else current!.Add(t);
        return input.SelectMany(t => spans.TryGetValue(t, out var span) ? span : [t]).ToArray();
    }
}
