using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Masked-LM head: dense H→E + GELU (the config's form) + LayerNorm, then a decoder tied to the token embeddings (V×E) plus its own bias.</summary>
/// <remarks>
/// The tied table is read through a delegate, not held as a field, so RegisterComponents does not register the embedding
/// a second time: the weight belongs to the embeddings and appears once in parameters() and the state dict.
/// </remarks>
public sealed class MaskedLmHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear transform;
    private readonly LayerNorm norm;
    private readonly Parameter bias;
    private readonly Func<Tensor> decoderWeight;
    private readonly GELU.Approximate gelu;

    public MaskedLmHead(int hidden, Embedding tokenEmbedding, double layerNormEps, double initStd, GeluKind gelu = GeluKind.Exact) : base(nameof(MaskedLmHead))
    {
        this.gelu = gelu == GeluKind.Tanh ? GELU.Approximate.tanh : GELU.Approximate.none;
        var weight = tokenEmbedding.weight!;
        long vocab = weight.shape[0], width = weight.shape[1];
        transform = Init.Linear(nn.Linear(hidden, width), initStd);
        norm = nn.LayerNorm(width, layerNormEps);
        bias = new Parameter(zeros(vocab));
        decoderWeight = () => tokenEmbedding.weight!;
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → logits (B, T, V).</summary>
    public override Tensor forward(Tensor hidden)
    {
        var x = norm.forward(nn.functional.gelu(transform.forward(hidden), gelu)); // (B, T, E)
        return nn.functional.linear(x, decoderWeight(), bias);                  // (B, T, V)
    }
}

/// <summary>Binary sentence-pair head on [CLS] (NSP for BERT, SOP for ALBERT): pooler dense+tanh, then H→2.</summary>
public sealed class SentencePairHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear pooler;
    private readonly Linear classifier;

    public SentencePairHead(int hidden, double initStd) : base(nameof(SentencePairHead))
    {
        pooler = Init.Linear(nn.Linear(hidden, hidden), initStd);
        classifier = Init.Linear(nn.Linear(hidden, 2), initStd);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → logits (B, 2); class 1 = "B follows A" (NSP) / "in order" (SOP).</summary>
    public override Tensor forward(Tensor hidden)
    {
        var pooled = pooler.forward(Pooling.Pool(hidden, null, PoolingMode.First)).tanh(); // (B, H)
        return classifier.forward(pooled);                                                // (B, 2)
    }
}

/// <summary>ELECTRA's discriminator head: dense H→H + GELU, then one logit per token (replaced vs original).</summary>
public sealed class ReplacedTokenHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly Linear classifier;
    private readonly GELU.Approximate gelu;

    public ReplacedTokenHead(int hidden, double initStd, GeluKind gelu = GeluKind.Exact) : base(nameof(ReplacedTokenHead))
    {
        this.gelu = gelu == GeluKind.Tanh ? GELU.Approximate.tanh : GELU.Approximate.none;
        dense = Init.Linear(nn.Linear(hidden, hidden), initStd);
        classifier = Init.Linear(nn.Linear(hidden, 1), initStd);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → logits (B, T); positive means "replaced".</summary>
    public override Tensor forward(Tensor hidden)
        => classifier.forward(nn.functional.gelu(dense.forward(hidden), gelu)).squeeze(-1); // (B, T)
}
