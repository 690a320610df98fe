using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Heads;

/// <summary>Finite-difference gradient checks (float64) of every head, with respect to its input and its parameters.</summary>
public sealed class HeadGradientTests
{
    private static Tensor Hidden() => randn([2, 4, 8], ScalarType.Float64).requires_grad_(true);
    private static readonly Tensor PadMask = tensor(new long[,] { { 1, 1, 0, 0 }, { 1, 1, 1, 1 } });

    [Fact]
    public void Masked_lm_head_gradients_reach_the_tied_embedding()
    {
        Tiny.Seed();
        var table = nn.Embedding(10, 6).to(ScalarType.Float64);
        var head = new MaskedLmHead(8, table, 1e-12, 0.3).to(ScalarType.Float64);
        var h = Hidden();
        var project = GradCheck.Projection([2, 4, 10]);
        // The table is not a parameter of the head (it belongs to the embeddings), so it is checked explicitly.
        Assert.DoesNotContain(head.named_parameters(), p => p.parameter.shape.SequenceEqual(new long[] { 10, 6 }));
        GradCheck.Check(() => project(head.forward(h)), [("h", h), ("tied", table.weight!), .. GradCheck.ParametersOf(head)]);
    }

    [Fact]
    public void Sentence_pair_head_gradients_match()
    {
        Tiny.Seed();
        var head = new SentencePairHead(8, 0.3).to(ScalarType.Float64);
        var h = Hidden();
        var project = GradCheck.Projection([2, 2]);
        GradCheck.Check(() => project(head.forward(h)), [("h", h), .. GradCheck.ParametersOf(head)]);
    }

    [Fact]
    public void Replaced_token_head_gradients_match()
    {
        Tiny.Seed();
        var head = new ReplacedTokenHead(8, 0.3).to(ScalarType.Float64);
        var h = Hidden();
        var project = GradCheck.Projection([2, 4]);
        GradCheck.Check(() => project(head.forward(h)), [("h", h), .. GradCheck.ParametersOf(head)]);
    }

    [Theory]
    [InlineData(PoolingMode.First)]
    [InlineData(PoolingMode.Last)]
    [InlineData(PoolingMode.Mean)]
    public void Sequence_classification_head_gradients_match(PoolingMode pooling)
    {
        Tiny.Seed();
        var head = new SequenceClassificationHead(8, 3, pooling, dropout: 0.5, initStd: 0.3).to(ScalarType.Float64);
        head.eval();
        var h = Hidden();
        var project = GradCheck.Projection([2, 3]);
        GradCheck.Check(() => project(head.forward(h, PadMask)), [("h", h), .. GradCheck.ParametersOf(head)]);
    }

    [Fact]
    public void Token_classification_head_gradients_match()
    {
        Tiny.Seed();
        var head = new TokenClassificationHead(8, 5, dropout: 0.5, initStd: 0.3).to(ScalarType.Float64);
        head.eval();
        var h = Hidden();
        var project = GradCheck.Projection([2, 4, 5]);
        GradCheck.Check(() => project(head.forward(h)), [("h", h), .. GradCheck.ParametersOf(head)]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reward_head_gradients_match(bool causal)
    {
        Tiny.Seed();
        var head = new RewardHead(8, causal, 0.3).to(ScalarType.Float64);
        var h = Hidden();
        var project = GradCheck.Projection([2]);
        GradCheck.Check(() => project(head.forward(h, PadMask)), [("h", h), .. GradCheck.ParametersOf(head)]);
    }

    [Fact]
    public void Causal_pooling_reads_the_last_real_token_and_encoder_pooling_reads_cls()
    {
        var h = arange(2 * 4 * 1, ScalarType.Float64).view(2, 4, 1);           // value = 4·b + t
        var last = Pooling.Pool(h, PadMask, PoolingMode.Last).view(-1);
        Assert.Equal(new[] { 1.0, 7.0 }, last.data<double>().ToArray());       // row 0 has 2 real tokens, row 1 has 4
        var cls = Pooling.Pool(h, PadMask, PoolingMode.First).view(-1);
        Assert.Equal(new[] { 0.0, 4.0 }, cls.data<double>().ToArray());
        var mean = Pooling.Pool(h, PadMask, PoolingMode.Mean).view(-1);
        Assert.Equal(new[] { 0.5, 5.5 }, mean.data<double>().ToArray());      // (0+1)/2 by hand; (4+5+6+7)/4
    }
}
