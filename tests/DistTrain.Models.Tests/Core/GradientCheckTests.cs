using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Core;

/// <summary>Finite-difference gradient checks (float64) of the core modules, with and without masks.</summary>
public sealed class GradientCheckTests
{
    private static Tensor Input(long b, long t, long h) => randn([b, t, h], ScalarType.Float64).requires_grad_(true);

    [Fact]
    public void The_checker_itself_catches_a_wrong_gradient()
    {
        // Detaching half of the path hides it from autograd but not from finite differences.
        var x = randn([3, 4], ScalarType.Float64).requires_grad_(true);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
            GradCheck.Check(() => (x * x).sum() + (x.detach() * 3).sum(), [("x", x)]));
        GradCheck.Check(() => (x * x).sum() + (x * 3).sum(), [("x", x)]);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void Self_attention_gradients_match_finite_differences(bool padding, bool causal)
    {
        Tiny.Seed();
        var attention = new SelfAttention(8, 2, attentionDropout: 0.5, initStd: 0.3, projInitStd: 0.3).to(ScalarType.Float64);
        attention.eval();                                                   // dropout would make the function random
        var x = Input(2, 5, 8);
        var pad = padding ? tensor(new long[,] { { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } }) : null;
        var mask = AttentionMask.Build(pad, 5, causal, ScalarType.Float64, x.device);
        var project = GradCheck.Projection([2, 5, 8]);
        GradCheck.Check(() => project(attention.forward(x, mask)),
            [("x", x), .. GradCheck.ParametersOf(attention)]);
    }

    [Theory]
    [InlineData(NormPlacement.Post)]
    [InlineData(NormPlacement.Pre)]
    public void Transformer_block_gradients_match_finite_differences(NormPlacement norm)
    {
        Tiny.Seed();
        var config = Tiny.Bert() with { HiddenSize = 8, IntermediateSize = 16, Norm = norm, InitStd = 0.3 };
        var block = new TransformerBlock(config).to(ScalarType.Float64);
        block.eval();
        var x = Input(2, 4, 8);
        var mask = AttentionMask.Build(tensor(new long[,] { { 1, 1, 1, 0 }, { 1, 1, 1, 1 } }), 4, causal: norm == NormPlacement.Pre, ScalarType.Float64, x.device);
        var project = GradCheck.Projection([2, 4, 8]);
        GradCheck.Check(() => project(block.forward(x, mask)), [("x", x), .. GradCheck.ParametersOf(block)]);
    }

    [Fact]
    public void Embedding_gradients_match_finite_differences()
    {
        Tiny.Seed();
        var embeddings = new Embeddings(Tiny.Bert() with { HiddenSize = 8 }).to(ScalarType.Float64);
        embeddings.eval();
        var ids = tensor(new long[,] { { 1, 5, 5, 9 }, { 2, 7, 3, 1 } });
        var segments = tensor(new long[,] { { 0, 0, 1, 1 }, { 0, 1, 1, 1 } });
        var project = GradCheck.Projection([2, 4, 8]);
        // Few distinct ids, so random entries of the tables often land on rows that were used.
        GradCheck.Check(() => project(embeddings.forward(ids, segments)), [.. GradCheck.ParametersOf(embeddings)], samplesPerTensor: 12);
    }

    [Fact]
    public void Factorized_embedding_gradients_match_finite_differences()
    {
        Tiny.Seed();
        var config = Tiny.Albert() with { VocabSize = 6, EmbeddingSize = 4, HiddenSize = 8, InitStd = 0.3 };
        var transformer = new Transformer(config).to(ScalarType.Float64);
        transformer.eval();
        var ids = tensor(new long[,] { { 1, 5, 2, 4 }, { 0, 3, 3, 1 } });
        var project = GradCheck.Projection([2, 4, 8]);
        var wrt = GradCheck.ParametersOf(transformer).Where(p => p.Item1.StartsWith("embeddings") || p.Item1.StartsWith("projection")).ToList();
        Assert.Contains(wrt, p => p.Item1.StartsWith("projection"));
        GradCheck.Check(() => project(transformer.Embed(ids, null)), wrt, samplesPerTensor: 10);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Whole_transformer_gradients_match_finite_differences(bool gpt)
    {
        Tiny.Seed();
        ModelConfig config = gpt
            ? Tiny.Gpt() with { HiddenSize = 8, IntermediateSize = 16, InitStd = 0.3 }
            : Tiny.Albert() with { HiddenSize = 8, EmbeddingSize = 4, IntermediateSize = 16, InitStd = 0.3 };
        var transformer = new Transformer(config).to(ScalarType.Float64);
        transformer.eval();
        var ids = Tiny.Ids(2, 5);
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 0 }, { 1, 1, 1, 1, 1 } });
        var project = GradCheck.Projection([2, 5, 8]);
        GradCheck.Check(() => project(transformer.forward(ids, mask, null)), [.. GradCheck.ParametersOf(transformer)], samplesPerTensor: 3);
    }
}
