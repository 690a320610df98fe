using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Pairwise preference objectives: the Bradley–Terry reward-model loss and DPO.</summary>
public static class PreferenceLosses
{
    /// <summary>
    /// Σ −log σ(r_chosen − r_rejected) over pairs: rewards (B) and (B) → Count = pairs; metric "correct" = pairs ranked right
    /// (pairwise accuracy = correct / count).
    /// </summary>
    public static LossTerms BradleyTerry(Tensor chosenRewards, Tensor rejectedRewards)
    {
        var margin = chosenRewards - rejectedRewards;                              // (B)
        // −log σ(x) through logsigmoid: stable for large |x| where log(sigmoid(x)) would hit log(0).
        var sum = -nn.functional.logsigmoid(margin).sum();
        return new LossTerms(sum, margin.shape[0])
        {
            Metrics = new Dictionary<string, double> { ["correct"] = LossTerms.CountOf(margin.gt(Scalars.Zero)) },
        };
    }

    /// <summary>
    /// DPO: Σ −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]) over pairs; all inputs (B) are
    /// sequence log-probs summed over response tokens (<see cref="LanguageModelLosses.SequenceLogProbs"/>).
    /// The reference terms are detached, so the reference stays frozen even if the caller forgot no_grad.
    /// Count = pairs; metrics "correct" (implicit reward of chosen above rejected) and "margin" (Σ β·margin).
    /// </summary>
    public static LossTerms Dpo(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected, double beta = 0.1)
    {
        if (!(beta > 0)) throw new ArgumentException($"beta must be > 0, got {beta}.", nameof(beta));
        var chosenRatio = policyChosen - referenceChosen.detach();                 // (B)
        var rejectedRatio = policyRejected - referenceRejected.detach();           // (B)
        using var betaScalar = beta.ToScalar();
        var logits = (chosenRatio - rejectedRatio) * betaScalar;                         // (B)
        var sum = -nn.functional.logsigmoid(logits).sum();
        return new LossTerms(sum, logits.shape[0])
        {
            Metrics = new Dictionary<string, double>
            {
                ["correct"] = LossTerms.CountOf(logits.gt(Scalars.Zero)),
                ["margin"] = LossTerms.Scalar(logits.sum()),
            },
        };
    }
}
