using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Core;

/// <summary>Padding and causal masks: what a position may not see cannot change its output.</summary>
public sealed class MaskTests
{
    private static readonly Tensor Padding = tensor(new long[,] { { 1, 1, 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1, 1, 1 } });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Changing_a_padded_token_changes_no_other_position(bool gpt)
    {
        Tiny.Seed();
        using var backbone = new Transformer(gpt ? Tiny.Gpt() : Tiny.Bert());
        backbone.eval();
        var ids = Tiny.Ids(2, 8);
        var before = backbone.forward(ids, Padding, null);                       // (2, 8, H)
        var changed = ids.clone();
        changed[0, TensorIndex.Slice(5)] = randint(4, Tiny.Vocab, [3], ScalarType.Int64);
        var after = backbone.forward(changed, Padding, null);
        Assert.True(before[0, TensorIndex.Slice(0, 5)].allclose(after[0, TensorIndex.Slice(0, 5)], rtol: 0, atol: 1e-6));
        Assert.True(before[1].allclose(after[1], rtol: 0, atol: 1e-6));
        // Sensitivity: without the mask the same change does reach the real tokens.
        var unmaskedBefore = backbone.forward(ids, null, null)[0, TensorIndex.Slice(0, 5)];
        var unmaskedAfter = backbone.forward(changed, null, null)[0, TensorIndex.Slice(0, 5)];
        if (!gpt) Assert.False(unmaskedBefore.allclose(unmaskedAfter, rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Padded_keys_are_ignored_by_attention_itself()
    {
        Tiny.Seed();
        var attention = new SelfAttention(8, 2, 0, 0.3, 0.3);
        var x = randn(2, 8, 8);
        var mask = AttentionMask.Build(Padding, 8, causal: false, ScalarType.Float32, x.device);
        var before = attention.forward(x, mask);
        var y = x.clone();
        y[0, TensorIndex.Slice(5)] = randn(3, 8) * 10;
        var after = attention.forward(y, mask);
        Assert.True(before[0, TensorIndex.Slice(0, 5)].allclose(after[0, TensorIndex.Slice(0, 5)], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Causal_output_at_t_ignores_tokens_after_t()
    {
        Tiny.Seed();
        using var gpt = new GptLanguageModel(Tiny.Gpt());
        gpt.eval();
        var ids = Tiny.Ids(2, 10);
        var before = gpt.forward(ids, null);                                      // (2, 10, V)
        for (int t = 0; t < 9; t++)
        {
            var changed = ids.clone();
            changed[TensorIndex.Colon, TensorIndex.Slice(t + 1)] = randint(4, Tiny.Vocab, [2, 9 - t], ScalarType.Int64);
            var after = gpt.forward(changed, null);
            Assert.True(before[TensorIndex.Colon, TensorIndex.Slice(0, t + 1)].allclose(after[TensorIndex.Colon, TensorIndex.Slice(0, t + 1)], rtol: 0, atol: 1e-5),
                $"positions <= {t} changed when only later tokens changed");
            Assert.False(before[TensorIndex.Colon, TensorIndex.Slice(t + 1)].allclose(after[TensorIndex.Colon, TensorIndex.Slice(t + 1)], rtol: 0, atol: 1e-5));
        }
    }

    [Fact]
    public void Encoder_attention_is_bidirectional()
    {
        Tiny.Seed();
        using var encoder = new Transformer(Tiny.Bert());
        encoder.eval();
        var ids = Tiny.Ids(1, 6);
        var changed = ids.clone();
        changed[0, 5] = tensor((ids[0, 5].item<long>() - 4 + 1) % (Tiny.Vocab - 4) + 4);
        Assert.False(encoder.forward(ids, null, null)[0, 0].allclose(encoder.forward(changed, null, null)[0, 0], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void A_fully_masked_row_stays_finite()
    {
        // Left padding under causality leaves query 0 with no visible key; the additive mask must not produce NaN.
        var mask = AttentionMask.Build(tensor(new long[,] { { 0, 1, 1 } }), 3, causal: true, ScalarType.Float32, CPU)!;
        var q = randn(1, 1, 3, 4, requires_grad: true);
        var y = nn.functional.scaled_dot_product_attention(q, q, q, mask);
        y.sum().backward();
        Assert.False(y.isnan().any().item<bool>());
        Assert.False(q.grad!.isnan().any().item<bool>());
    }

    [Fact]
    public void Dropout_is_active_in_train_and_off_in_eval()
    {
        Tiny.Seed();
        using var backbone = new Transformer(Tiny.Bert(dropout: 0.3));
        var ids = Tiny.Ids(2, 8);
        backbone.train();
        Assert.False(backbone.forward(ids, null, null).allclose(backbone.forward(ids, null, null)));
        backbone.eval();
        Assert.True(backbone.forward(ids, null, null).allclose(backbone.forward(ids, null, null), rtol: 0, atol: 0));
    }
}
