using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Classification objectives: sequence and token classification CE, and ELECTRA's replaced-token detection.</summary>
public static class ClassificationLosses
{
    /// <summary>logits (B, C), labels (B) with −100 to skip → Sum of CE, Count = labelled sequences; metric "correct".</summary>
    public static LossTerms Sequence(Tensor logits, Tensor labels) => LanguageModelLosses.MaskedLm(logits, labels);

    /// <summary>logits (B, T, C), labels (B, T) with −100 for pads/sub-word continuations → Sum of CE, Count = labelled tokens; metric "correct".</summary>
    public static LossTerms Token(Tensor logits, Tensor labels) => LanguageModelLosses.MaskedLm(logits, labels);

    /// <summary>
    /// Replaced-token detection: per-token binary CE of logits (B, T) against labels (B, T) (1 = replaced) over real tokens
    /// (attentionMask (B, T), null = all). Count = real tokens. Metrics "correct" and "replaced" (positives).
    /// </summary>
    public static LossTerms ReplacedTokenDetection(Tensor logits, Tensor labels, Tensor? attentionMask)
    {
        var target = labels.to(logits.dtype);                                                 // (B, T)
        var perToken = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction: nn.Reduction.None); // (B, T)
        var real = attentionMask is null ? ones_like(target, ScalarType.Bool) : attentionMask.to(ScalarType.Bool); // (B, T)
        var sum = (perToken * real.to(perToken.dtype)).sum();
        var correct = logits.gt(Scalars.Zero).eq(target.gt(Scalars.Half)).logical_and(real);                     // (B, T)
        return new LossTerms(sum, LossTerms.CountOf(real))
        {
            Metrics = new Dictionary<string, double>
            {
                ["correct"] = LossTerms.CountOf(correct),
                ["replaced"] = LossTerms.CountOf(target.gt(Scalars.Half).logical_and(real)),
            },
        };
    }
}
