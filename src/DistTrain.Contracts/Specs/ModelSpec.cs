namespace DistTrain.Contracts.Specs;

/// <summary>Transformer family; decides tokenizer, attention mask and which objectives fit.</summary>
/// <remarks>Append new families (xlnet, t5) at the end and extend the switches in <see cref="ModelFamilies"/>.</remarks>
public enum ModelFamily { Bert, Roberta, Albert, Electra, Gpt, Xlnet, T5 }

/// <summary>Facts about each family that validation needs without loading a model.</summary>
public static class ModelFamilies
{
    /// <summary>True for bidirectional encoders (masked-LM family), false for causal decoders.</summary>
    public static bool IsEncoder(this ModelFamily family) => family != ModelFamily.Gpt;

    /// <summary>True for families that encode positions relatively (XLNet, T5): no position table, so max_len is no limit.</summary>
    public static bool HasRelativePositions(this ModelFamily family) => family is ModelFamily.Xlnet or ModelFamily.T5;

    /// <summary>The family's only pre-training objective, when it has one of its own (XLNet: plm, T5: span_corruption).</summary>
    public static ObjectiveKind? OwnObjective(this ModelFamily family) => family switch
    {
        ModelFamily.Xlnet => ObjectiveKind.Plm,
        ModelFamily.T5 => ObjectiveKind.SpanCorruption,
        _ => null,
    };

    /// <summary>
    /// The Hugging Face model_type each family imports from and exports to (docs/interop.md); a family absent here has
    /// no interop yet. DistTrain.Models.Interop.HfFamilies holds the reader and writer of each model_type.
    /// </summary>
    public static IReadOnlyDictionary<ModelFamily, string> HfModelTypes { get; } = new Dictionary<ModelFamily, string>
    {
        [ModelFamily.Gpt] = "gpt2",
        [ModelFamily.Bert] = "bert",
        [ModelFamily.Roberta] = "roberta",
        [ModelFamily.Electra] = "electra",
        [ModelFamily.Albert] = "albert",
        [ModelFamily.T5] = "t5",
        [ModelFamily.Xlnet] = "xlnet",
    };

    /// <summary>
    /// Ids every family's sub-vocabulary reserves before any merged GPT-2 token: 38 specials (pad, bos, eos, cls,
    /// sep, mask, 32 sentinels) and the 256 byte tokens that make the round trip exact. vocab_size must exceed it.
    /// </summary>
    /// <remarks>Equal to DistTrain.Data's SubVocabulary.FirstMergedId; a training test checks the two agree.</remarks>
    public const int ReservedTokenIds = 294;
}

/// <summary>Where each transformer block applies LayerNorm: after the residual add (BERT) or before each sublayer (GPT-2).</summary>
public enum LayerNormPosition { Post, Pre }

/// <summary>The MLP's GELU: exact erf (the default) or GPT-2's tanh approximation, which a GPT-2 checkpoint needs (docs/interop.md).</summary>
public enum GeluForm { Exact, Tanh }

/// <summary>The (smaller) ELECTRA generator that proposes replacements for the discriminator.</summary>
public sealed record GeneratorSpec(int Layers, int Hidden, int Heads, int Ffn);

/// <summary>Shape of one transformer. Everything here must match for a checkpoint to load into it, except dropout.</summary>
/// <param name="EmbeddingSize">Factorised embedding width (ALBERT, ELECTRA) as written; null means the family default, see <see cref="EmbeddingWidth"/>.</param>
/// <param name="Generator">ELECTRA generator; required for rtd, not allowed for other families.</param>
/// <param name="Norm">LayerNorm placement as written; null means the family's own, see <see cref="NormPosition"/>.</param>
public sealed record ModelSpec(
    ModelFamily Family,
    int Layers,
    int Hidden,
    int Heads,
    int Ffn,
    int MaxLen,
    int VocabSize,
    double Dropout = 0.1,
    int? EmbeddingSize = null,
    GeneratorSpec? Generator = null,
    LayerNormPosition? Norm = null,
    GeluForm? Gelu = null)
{
    /// <summary>The placement actually built: the spec's, else the family's (pre-LN for GPT and T5, post-LN for the BERT line and XLNet).</summary>
    public LayerNormPosition NormPosition => Norm ?? (Family is ModelFamily.Gpt or ModelFamily.T5 ? LayerNormPosition.Pre : LayerNormPosition.Post);

    /// <summary>The embedding width actually built: the spec's, else ALBERT's factorised H/4 (at least 16, at most H), else H.</summary>
    /// <remarks>The one place this default lives, so model building, size estimates and shape checks agree.</remarks>
    public int EmbeddingWidth => EmbeddingSize ?? (Family == ModelFamily.Albert ? Math.Min(Hidden, Math.Max(16, Hidden / 4)) : Hidden);

    /// <summary>True when <paramref name="other"/> has the same weights layout, i.e. a checkpoint of one loads into the other.</summary>
    public bool SameShapeAs(ModelSpec other) => Normal(this) == Normal(other);

    private static ModelSpec Normal(ModelSpec m) => m with { Dropout = 0, EmbeddingSize = m.EmbeddingWidth, Norm = m.NormPosition };

    /// <summary>Approximate trainable parameters, used to check distillation ratios without building the model.</summary>
    /// <remarks>
    /// Counts embeddings (token, position, plus BERT-style segment), the embedding projection when factorised,
    /// and per layer attention (4 H² + biases), the two FFN matrices and two layer norms. ALBERT shares one layer
    /// across depth, so it is counted once. The LM/classification head is tied or tiny and is left out;
    /// the ELECTRA generator is left out because only the discriminator is kept.
    /// </remarks>
    public long ApproxParameters()
    {
        long h = Hidden, e = EmbeddingWidth, f = Ffn;
        long segments = Family is ModelFamily.Gpt || Family.HasRelativePositions() ? 0 : 2;
        long positions = Family.HasRelativePositions() ? 0 : MaxLen;
        long embeddings = (VocabSize + positions + segments) * e + 2 * e + (e != h ? e * h + h : 0);
        long layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 4 * h;
        long layers = Family switch
        {
            ModelFamily.Albert => layer,
            ModelFamily.Xlnet => (layer + h * h + 2 * h) * Layers,                 // + the relative projection W_r and the biases u, v
            ModelFamily.T5 => (2 * layer + 4 * h * h) * Layers,                     // encoder and decoder stacks, + cross-attention
            _ => layer * Layers,
        };
        return embeddings + layers;
    }
}
