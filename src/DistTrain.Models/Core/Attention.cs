using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Builds the additive (B, 1, T, T) attention mask every family uses: key padding and, for decoders, causality.</summary>
public static class AttentionMask
{
    /// <summary>
    /// paddingMask is (B, T) with 1/true for real tokens; returns null when nothing needs masking so attention takes its fast path.
    /// </summary>
    /// <remarks>
    /// The mask is additive with the dtype's most negative finite value rather than −∞ or a bool mask: a row whose keys
    /// are all masked (a left-padded query under causality) then gets uniform weights instead of NaN, and NaN in an
    /// ignored position would still poison the backward pass.
    /// </remarks>
    public static Tensor? Build(Tensor? paddingMask, long seqLen, bool causal, ScalarType dtype, Device device)
    {
        if (paddingMask is null && !causal) return null;
        using var scope = NewDisposeScope();
        var allowed = ones(1, 1, seqLen, seqLen, ScalarType.Bool, device);            // (1, 1, T, T)
        if (causal) allowed = allowed.tril();                                           // key j visible to query i iff j <= i
        if (paddingMask is not null)
        {
            if (paddingMask.dim() != 2 || paddingMask.shape[1] != seqLen)
                throw new ArgumentException($"attention mask must be (B, {seqLen}), got ({string.Join(", ", paddingMask.shape)}).", nameof(paddingMask));
            var keys = paddingMask.to(ScalarType.Bool).view(paddingMask.shape[0], 1, 1, seqLen); // (B, 1, 1, T)
            allowed = allowed.logical_and(keys);                                        // (B, 1, T, T)
        }
        using var lowest = finfo(dtype).min.ToScalar();
        var additive = zeros(allowed.shape, dtype, device)
            .masked_fill(allowed.logical_not(), lowest);                      // (B|1, 1, T, T)
        return additive.MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention over (B, T, H) via scaled_dot_product_attention.</summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int heads;
    private readonly double attentionDropout;

    public SelfAttention(int hidden, int heads, double attentionDropout, double initStd, double projInitStd) : base(nameof(SelfAttention))
    {
        if (hidden % heads != 0) throw new ArgumentException($"hidden ({hidden}) must be divisible by heads ({heads}).", nameof(heads));
        this.heads = heads;
        this.attentionDropout = attentionDropout;
        // One fused projection: a single GEMM instead of three.
        qkv = Init.Linear(nn.Linear(hidden, 3 * hidden), initStd);
        proj = Init.Linear(nn.Linear(hidden, hidden), projInitStd);
        RegisterComponents();
    }

    /// <summary>x (B, T, H), mask (B|1, 1, T, T) additive or null → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor? mask)
    {
        long b = x.shape[0], t = x.shape[1], h = x.shape[2], hd = h / heads;
        var parts = qkv.forward(x)                                   // (B, T, 3H)
            .view(b, t, 3, heads, hd)                                // (B, T, 3, nh, hd)
            .permute(2, 0, 3, 1, 4)                                  // (3, B, nh, T, hd)
            .unbind(0);
        // sdpa applies its dropout whenever p > 0, so train/eval is decided here.
        var y = nn.functional.scaled_dot_product_attention(
            parts[0], parts[1], parts[2], mask, training ? attentionDropout : 0.0); // (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(b, t, h);                      // (B, T, H)
        return proj.forward(y);                                      // (B, T, H)
    }
}
