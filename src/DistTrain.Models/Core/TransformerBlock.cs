using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>One transformer layer (attention + GELU MLP) with post-LN (BERT) or pre-LN (GPT-2) residuals.</summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly SelfAttention attention;
    private readonly LayerNorm attention_norm;
    private readonly Linear fc_in;
    private readonly Linear fc_out;
    private readonly LayerNorm mlp_norm;
    private readonly Dropout dropout;
    private readonly bool preNorm;
    private readonly GELU.Approximate gelu;

    public TransformerBlock(ModelConfig config) : base(nameof(TransformerBlock))
    {
        config.Validate();
        preNorm = config.Norm == NormPlacement.Pre;
        gelu = config.Gelu == GeluKind.Tanh ? GELU.Approximate.tanh : GELU.Approximate.none;
        // GPT-2 scales the residual-branch outputs by 1/sqrt(2L) so the residual stream's variance does not grow with depth.
        double residualStd = preNorm ? config.InitStd / Math.Sqrt(2.0 * config.Layers) : config.InitStd;
        attention = new SelfAttention(config.HiddenSize, config.Heads, config.AttentionDropout, config.InitStd, residualStd);
        attention_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        fc_in = Init.Linear(nn.Linear(config.HiddenSize, config.IntermediateSize), config.InitStd);
        fc_out = Init.Linear(nn.Linear(config.IntermediateSize, config.HiddenSize), residualStd);
        mlp_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>x (B, T, H), additive mask (B|1, 1, T, T) or null → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor? mask)
    {
        if (preNorm)
        {
            x = x.add(dropout.forward(attention.forward(attention_norm.forward(x), mask)), Scalars.One); // (B, T, H)
            return x.add(dropout.forward(Mlp(mlp_norm.forward(x))), Scalars.One);                       // (B, T, H)
        }
        x = attention_norm.forward(x.add(dropout.forward(attention.forward(x, mask)), Scalars.One));    // (B, T, H)
        return mlp_norm.forward(x.add(dropout.forward(Mlp(x)), Scalars.One));                           // (B, T, H)
    }

    private Tensor Mlp(Tensor x) => fc_out.forward(nn.functional.gelu(fc_in.forward(x), gelu)); // (B, T, I) → (B, T, H)
}
