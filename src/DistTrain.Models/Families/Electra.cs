using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>ELECTRA: the base fields size the discriminator; the Generator* fields size the small MLM generator.</summary>
public sealed record ElectraConfig : ModelConfig
{
    public int GeneratorHiddenSize { get; init; } = 64;
    public int GeneratorHeads { get; init; } = 1;
    public int GeneratorIntermediateSize { get; init; } = 256;
    /// <summary>Generator depth; 0 means the discriminator's depth (the paper shrinks width, not depth).</summary>
    public int GeneratorLayers { get; init; }
    /// <summary>λ in loss = MLM + λ·RTD (the paper's 50: RTD is far easier per token than MLM).</summary>
    public double RtdWeight { get; init; } = 50.0;

    /// <summary>ELECTRA-small defaults: E 128, H 256, L 12, A 4, I 1024; generator a quarter as wide.</summary>
    public ElectraConfig()
    {
        EmbeddingSize = 128;
        HiddenSize = 256;
        Heads = 4;
        IntermediateSize = 1024;
    }

    /// <summary>The generator's shape: this config with the Generator* sizes (same vocabulary, embeddings and positions).</summary>
    public ModelConfig GeneratorConfig() => this with
    {
        HiddenSize = GeneratorHiddenSize,
        Heads = GeneratorHeads,
        IntermediateSize = GeneratorIntermediateSize,
        Layers = GeneratorLayers == 0 ? Layers : GeneratorLayers,
        EmbeddingSize = EmbeddingWidth,
    };

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Positive(GeneratorHiddenSize, nameof(GeneratorHiddenSize));
        Positive(GeneratorHeads, nameof(GeneratorHeads));
        Positive(GeneratorIntermediateSize, nameof(GeneratorIntermediateSize));
        if (GeneratorLayers < 0) throw new ArgumentException($"{nameof(GeneratorLayers)} must be >= 0, got {GeneratorLayers}.", nameof(GeneratorLayers));
        if (GeneratorHiddenSize % GeneratorHeads != 0)
            throw new ArgumentException($"{nameof(GeneratorHiddenSize)} ({GeneratorHiddenSize}) must be divisible by {nameof(GeneratorHeads)} ({GeneratorHeads}).", nameof(GeneratorHiddenSize));
        if (!(RtdWeight >= 0)) throw new ArgumentException($"{nameof(RtdWeight)} must be >= 0, got {RtdWeight}.", nameof(RtdWeight));
    }
}

/// <summary>
/// ELECTRA pre-training: a small MLM generator proposes replacements, the discriminator detects them per token.
/// Both read the same <see cref="Embeddings"/> object, so the token table is one Parameter updated by both losses.
/// </summary>
/// <remarks>Only <see cref="Backbone"/> (the discriminator) is kept for fine-tuning; the generator is discarded.</remarks>
public sealed class ElectraForPreTraining : nn.Module<Tensor, Tensor?, Tensor?, Tensor>, IHasBackbone
{
    private readonly Transformer generator;
    private readonly MaskedLmHead generator_head;
    private readonly Transformer discriminator;
    private readonly ReplacedTokenHead rtd_head;
    private readonly double rtdWeight;

    public ElectraForPreTraining(ElectraConfig config) : base(nameof(ElectraForPreTraining))
    {
        config.Validate();
        rtdWeight = config.RtdWeight;
        discriminator = new Transformer(config);
        var generatorConfig = config.GeneratorConfig();
        generator = new Transformer(generatorConfig, discriminator.Embeddings);
        generator_head = new MaskedLmHead(generatorConfig.HiddenSize, discriminator.Embeddings.Token, config.LayerNormEps, config.InitStd, config.Gelu);
        rtd_head = new ReplacedTokenHead(config.HiddenSize, config.InitStd, config.Gelu);
        RegisterComponents();
    }

    /// <summary>The discriminator: the encoder kept for fine-tuning.</summary>
    public Transformer Backbone => discriminator;

    /// <summary>The generator encoder (shares <see cref="Transformer.Embeddings"/> with the discriminator).</summary>
    public Transformer Generator => generator;

    /// <summary>Discriminator RTD logits for given ids: ids (B, T), attentionMask (B, T)?, segments (B, T)? → (B, T).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
        => rtd_head.forward(discriminator.forward(ids, attentionMask, segments));

    /// <summary>Generator MLM logits: maskedIds (B, T) → (B, T, V).</summary>
    public Tensor GeneratorLogits(Tensor maskedIds, Tensor? attentionMask, Tensor? segments)
        => generator_head.forward(generator.forward(maskedIds, attentionMask, segments));

    /// <summary>
    /// Samples a replacement at every masked position (mlmLabels ≠ −100) from softmax(generatorLogits) with rng, without
    /// gradient: ELECTRA does not back-propagate the discriminator loss into the generator through sampling.
    /// Returns corrupted ids (B, T) and replaced (B, T) bool: true only where the sample differs from the original,
    /// so a lucky correct sample counts as "original" (as in the paper).
    /// </summary>
    public static (Tensor Corrupted, Tensor Replaced) Corrupt(Tensor generatorLogits, Tensor maskedIds, Tensor mlmLabels, Generator? rng)
    {
        using var _ = no_grad();
        long b = maskedIds.shape[0], t = maskedIds.shape[1], v = generatorLogits.shape[^1];
        var masked = mlmLabels.ne(Scalars.IgnoreIndex);                            // (B, T)
        var probs = generatorLogits.detach().reshape(-1, v).softmax(-1);                       // (B·T, V)
        var sampled = probs.multinomial(1, generator: rng).view(b, t);                         // (B, T)
        var corrupted = where(masked, sampled, maskedIds);                                     // (B, T)
        var replaced = masked.logical_and(sampled.ne(mlmLabels));                              // (B, T)
        return (corrupted, replaced);
    }

    /// <summary>
    /// loss = MLM + λ·RTD. maskedIds (B, T) carry [MASK] (or kept/random tokens) at the positions where mlmLabels (B, T)
    /// hold the original id; elsewhere mlmLabels is −100.
    /// </summary>
    /// <remarks>
    /// Count combination (<see cref="LossTerms.Combine"/>): parts "rtd" (anchor; Count = real tokens, weight λ) and
    /// "mlm" (Count = masked tokens, weight 1). The top-level Count is the real-token count, and Sum / Count equals
    /// λ·mean RTD + mean MLM on this micro-batch; <see cref="LossTerms.Normalize"/> with both global counts is exact.
    /// </remarks>
    public LossTerms Loss(Tensor maskedIds, Tensor? attentionMask, Tensor? segments, Tensor mlmLabels, Generator? rng)
    {
        var generatorLogits = GeneratorLogits(maskedIds, attentionMask, segments);             // (B, T, V)
        var mlm = LanguageModelLosses.MaskedLm(generatorLogits, mlmLabels);
        var (corrupted, replaced) = Corrupt(generatorLogits, maskedIds, mlmLabels, rng);       // (B, T), (B, T)
        var rtdLogits = forward(corrupted, attentionMask, segments);                           // (B, T)
        var rtd = ClassificationLosses.ReplacedTokenDetection(rtdLogits, replaced, attentionMask);
        return LossTerms.Combine(new LossPart("rtd", rtdWeight, rtd), new LossPart("mlm", 1.0, mlm));
    }
}

/// <summary>
/// An ELECTRA discriminator on its own: the encoder and the replaced-token head, with the same names as inside
/// <see cref="ElectraForPreTraining"/>. It is what a Hugging Face ElectraForPreTraining checkpoint holds (no generator).
/// </summary>
public sealed class ElectraDiscriminator : nn.Module<Tensor, Tensor?, Tensor?, Tensor>, IHasBackbone
{
    private readonly Transformer discriminator;
    private readonly ReplacedTokenHead rtd_head;

    public ElectraDiscriminator(ElectraConfig config) : base(nameof(ElectraDiscriminator))
    {
        config.Validate();
        discriminator = new Transformer(config);
        rtd_head = new ReplacedTokenHead(config.HiddenSize, config.InitStd, config.Gelu);
        RegisterComponents();
    }

    /// <inheritdoc />
    public Transformer Backbone => discriminator;

    /// <summary>ids (B, T), attentionMask (B, T)?, segments (B, T)? → RTD logits (B, T); positive means "replaced".</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
        => rtd_head.forward(discriminator.forward(ids, attentionMask, segments));
}
