using DistTrain.Training.Evaluation;

namespace DistTrain.Training.Tests.Evaluation;

/// <summary>The unigram baseline against a hand computation.</summary>
public sealed class UnigramBaselineTests
{
    [Fact]
    public void Matches_a_hand_computed_add_one_perplexity()
    {
        // Train: token 0 ×3, token 1 ×1, vocab 3 → p = (4/7, 2/7, 1/7).
        var model = UnigramBaseline.Fit([new[] { 0, 0, 1, 0 }], vocabSize: 3);
        // Score [0, 2]: nll = -(ln 4/7 + ln 1/7) / 2.
        double expected = Math.Exp(-(Math.Log(4.0 / 7) + Math.Log(1.0 / 7)) / 2);
        Assert.Equal(expected, model.Perplexity([new[] { 0, 2 }]), 12);
    }

    [Fact]
    public void Ignored_tokens_are_neither_counted_nor_scored()
    {
        var ignore = new HashSet<int> { 9 };
        var model = UnigramBaseline.Fit([new[] { 0, 9, 9, 1 }], vocabSize: 10, ignore);
        Assert.Equal(model.Perplexity([new[] { 0, 1 }]), model.Perplexity([new[] { 9, 0, 1, 9 }], ignore), 12);
        Assert.Throws<ArgumentException>(() => model.Perplexity([new[] { 9 }], ignore));
    }
}
