using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Token-level language-model objectives: MLM, next-token (CLM), instruction SFT, and sequence log-probabilities for DPO.</summary>
public static class LanguageModelLosses
{
    /// <summary>Label value whose targets contribute nothing (PyTorch's convention).</summary>
    public const long IgnoreIndex = -100;

    /// <summary>
    /// Cross-entropy at every position whose label is not −100: logits (…, V), labels (…) → Sum over targets, Count = targets.
    /// Metric "correct": targets whose argmax equals the label.
    /// </summary>
    public static LossTerms MaskedLm(Tensor logits, Tensor labels)
    {
        long v = logits.shape[^1];
        var flatLogits = logits.reshape(-1, v);                                   // (N, V)
        var flatLabels = labels.reshape(-1);                                      // (N)
        var sum = nn.functional.cross_entropy(flatLogits, flatLabels, ignore_index: IgnoreIndex, reduction: nn.Reduction.Sum);
        var valid = flatLabels.ne(Scalars.IgnoreIndex);                                   // (N)
        return new LossTerms(sum, LossTerms.CountOf(valid))
        {
            // Deferred: only evaluation reads it, and the argmax over (N, V) is not free.
            Metrics = new DeferredMetrics(() => new Dictionary<string, double>
            {
                ["correct"] = LossTerms.CountOf(flatLogits.argmax(-1).eq(flatLabels).logical_and(valid)),   // (N)
            }),
        };
    }

    /// <summary>
    /// Next-token prediction: logits (B, T, V) at position t are scored against labels (B, T) at t+1; labels −100 (pads,
    /// prompts) are skipped. Count = scored targets, i.e. non-ignored labels in positions 1..T−1.
    /// </summary>
    public static LossTerms CausalLm(Tensor logits, Tensor labels)
    {
        // Shift the labels, not the logits: narrowing logits to (B, T-1, V) makes the flattening copy them (forward)
        // and the narrow's backward fill a zero (B, T, V) gradient and copy into it — three passes over the largest
        // tensor of the step. The last position gets label −100 instead, so the same targets are scored.
        long t = logits.shape[1];
        var shifted = labels.narrow(1, 1, t - 1);                                 // (B, T-1)
        var last = full(labels.shape[0], 1, Scalars.IgnoreIndex, dtype: labels.dtype, device: labels.device);   // (B, 1)
        return MaskedLm(logits, cat([shifted, last], 1));                         // (B, T, V) against (B, T)
    }

    /// <summary>
    /// Instruction SFT: next-token loss only where answerMask (B, T) is true at the TARGET position, so prompt tokens
    /// (and pads, which must be outside the mask) contribute nothing. ids (B, T), logits (B, T, V).
    /// </summary>
    public static LossTerms InstructionSft(Tensor logits, Tensor ids, Tensor answerMask)
    {
        var labels = ids.masked_fill(answerMask.to(ScalarType.Bool).logical_not(), Scalars.IgnoreIndex); // (B, T)
        return CausalLm(logits, labels);
    }

    /// <summary>
    /// Σₜ log p(ids[t] | ids[&lt;t]) over positions where responseMask (B, T) is true: logits (B, T, V), ids (B, T) → (B).
    /// Position 0 is never scored (nothing predicts it).
    /// </summary>
    public static Tensor SequenceLogProbs(Tensor logits, Tensor ids, Tensor responseMask)
    {
        long t = logits.shape[1];
        var logp = logits.narrow(1, 0, t - 1).log_softmax(-1);                    // (B, T-1, V)
        var targets = ids.narrow(1, 1, t - 1).unsqueeze(-1);                     // (B, T-1, 1)
        var tokenLogp = logp.gather(-1, targets).squeeze(-1);                     // (B, T-1)
        var mask = responseMask.narrow(1, 1, t - 1).to(tokenLogp.dtype);         // (B, T-1)
        return (tokenLogp * mask).sum(1);                                         // (B)
    }
}
