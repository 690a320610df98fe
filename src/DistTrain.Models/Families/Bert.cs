using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Which binary sentence-pair objective an encoder pre-trains with, if any.</summary>
public enum PairObjective
{
    /// <summary>No pair head (RoBERTa).</summary>
    None,
    /// <summary>Next-sentence prediction: is B the sentence after A or a random one (BERT).</summary>
    NextSentence,
    /// <summary>Sentence-order prediction: are A and B in order or swapped (ALBERT).</summary>
    SentenceOrder,
}

/// <summary>BERT: post-LN encoder, segment embeddings for A/B, MLM + next-sentence prediction.</summary>
public sealed record BertConfig : ModelConfig
{
    public PairObjective Pair { get; init; } = PairObjective.NextSentence;

    /// <summary>BERT-base defaults (V 30522, H 768, L 12, A 12, I 3072, 512 positions, 2 segments).</summary>
    public BertConfig() { }
}

/// <summary>Outputs of an encoder pre-training forward: MLM logits (B, T, V) and pair logits (B, 2) when there is a pair head.</summary>
public sealed record PreTrainingOutput(Tensor MlmLogits, Tensor? PairLogits);

/// <summary>
/// An encoder with an MLM head and an optional sentence-pair head: BERT (NSP), RoBERTa (no pair head) and ALBERT
/// (factorized, shared layers, SOP) differ only in their config, so they share this one class.
/// </summary>
public sealed class EncoderForPreTraining : nn.Module<Tensor, Tensor?, Tensor?, PreTrainingOutput>, IHasBackbone
{
    private readonly Transformer encoder;
    private readonly MaskedLmHead mlm_head;
    private readonly SentencePairHead? pair_head;

    public EncoderForPreTraining(ModelConfig config, PairObjective pair) : base(nameof(EncoderForPreTraining))
    {
        if (config.IsCausal) throw new ArgumentException("an MLM encoder needs bidirectional attention; got a causal config.", nameof(config));
        if (pair != PairObjective.None && config.TypeVocabSize < 2)
            throw new ArgumentException($"{pair} needs segment embeddings for A and B (TypeVocabSize >= 2), got {config.TypeVocabSize}.", nameof(config));
        Pair = pair;
        encoder = new Transformer(config);
        mlm_head = new MaskedLmHead(config.HiddenSize, encoder.Embeddings.Token, config.LayerNormEps, config.InitStd, config.Gelu);
        if (pair != PairObjective.None) pair_head = new SentencePairHead(config.HiddenSize, config.InitStd);
        RegisterComponents();
    }

    /// <summary>The pair objective this model trains (None for RoBERTa).</summary>
    public PairObjective Pair { get; }

    /// <inheritdoc />
    public Transformer Backbone => encoder;

    /// <summary>ids (B, T) with masks already applied, attentionMask (B, T)?, segments (B, T)? → MLM logits (B, T, V), pair logits (B, 2)?.</summary>
    public override PreTrainingOutput forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
    {
        var hidden = encoder.forward(ids, attentionMask, segments);            // (B, T, H)
        return new PreTrainingOutput(mlm_head.forward(hidden), pair_head?.forward(hidden)); // (B, T, V), (B, 2)?
    }

    /// <summary>
    /// MLM (labels (B, T), −100 off the masked positions) plus the pair objective (pairLabels (B)), combined with
    /// <see cref="LossTerms.Combine"/>: parts "mlm" (anchor, Count = masked tokens) and "pair" (Count = sequences), weight 1 each.
    /// </summary>
    public LossTerms Loss(Tensor ids, Tensor? attentionMask, Tensor? segments, Tensor mlmLabels, Tensor? pairLabels)
    {
        var output = forward(ids, attentionMask, segments);
        var mlm = LanguageModelLosses.MaskedLm(output.MlmLogits, mlmLabels);
        if (output.PairLogits is null) return mlm;
        if (pairLabels is null) throw new ArgumentException($"{Pair} needs pair labels.", nameof(pairLabels));
        var pair = ClassificationLosses.Sequence(output.PairLogits, pairLabels);
        return LossTerms.Combine(new LossPart("mlm", 1.0, mlm), new LossPart("pair", 1.0, pair));
    }
}
