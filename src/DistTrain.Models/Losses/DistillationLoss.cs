using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>What the teacher provides: full logits, or the top-k (ids, probabilities) the label stage stored.</summary>
public abstract record TeacherSignal
{
    private TeacherSignal() { }

    /// <summary>Teacher logits (…, V), same shape as the student's.</summary>
    public sealed record FullLogits(Tensor Logits) : TeacherSignal;

    /// <summary>Top-k teacher ids (…, k) and their probabilities at temperature 1 (…, k).</summary>
    public sealed record TopK(Tensor Ids, Tensor Probs) : TeacherSignal;
}

/// <summary>Knobs of the distillation loss: temperature T, hard-label weight α, logit-MSE weight γ, soft-term weight (1 by default).</summary>
/// <remarks>
/// SoftWeight exists so a spec written as "a·soft + (1 − a)·hard" maps without a second formula:
/// SoftWeight = a, Alpha = 1 − a (and for an MSE soft target: SoftWeight = 0, Gamma = a).
/// </remarks>
public sealed record DistillationOptions(double Temperature = 2.0, double Alpha = 0.5, double Gamma = 0.0, double SoftWeight = 1.0)
{
    /// <summary>Throws ArgumentException for a non-positive temperature or negative weights.</summary>
    public void Validate()
    {
        if (!(Temperature > 0)) throw new ArgumentException($"Temperature must be > 0, got {Temperature}.", nameof(Temperature));
        if (Alpha < 0) throw new ArgumentException($"Alpha must be >= 0, got {Alpha}.", nameof(Alpha));
        if (Gamma < 0) throw new ArgumentException($"Gamma must be >= 0, got {Gamma}.", nameof(Gamma));
        if (SoftWeight < 0) throw new ArgumentException($"SoftWeight must be >= 0, got {SoftWeight}.", nameof(SoftWeight));
    }
}

/// <summary>Knowledge distillation: w·T²·KL(softmax(t/T) ‖ softmax(s/T)) + α·hard-label CE + γ·MSE(s, t) per position (w = SoftWeight, 1 by default).</summary>
public static class DistillationLoss
{
    /// <summary>
    /// student (…, V); labels (…) with −100 to skip, or null (no hard term, every position counts). Count = contributing
    /// positions; Sum adds per position w·T²·KL + α·CE + γ·mean_v (s − t)². Metrics "kl", "ce", "mse" are the unweighted sums.
    /// </summary>
    /// <remarks>
    /// T² keeps the soft term's gradient scale independent of T (Hinton et al.). With a top-k teacher the target is the
    /// teacher's distribution restricted to its k ids and renormalised: p_i^(1/T) / Σ_k p_j^(1/T), which equals softmax(t/T)
    /// restricted to those ids, so the only approximation is dropping the mass outside the top k. The student side keeps
    /// its full softmax over V. MSE needs full logits, so γ > 0 with a top-k teacher is an error.
    /// </remarks>
    public static LossTerms Compute(Tensor studentLogits, TeacherSignal teacher, Tensor? labels, DistillationOptions? options = null)
    {
        var o = options ?? new DistillationOptions();
        o.Validate();
        if (labels is null && o.Alpha > 0) throw new ArgumentException("Alpha > 0 needs hard labels.", nameof(labels));
        long v = studentLogits.shape[^1];
        double temperature = o.Temperature;
        using var temperatureScalar = temperature.ToScalar();
        var student = studentLogits.reshape(-1, v);                                        // (N, V)
        var studentLogp = (student / temperatureScalar).log_softmax(-1);                         // (N, V)
        Tensor kl;                                                                          // (N)
        Tensor? mse = null;                                                                 // (N)
        switch (teacher)
        {
            case TeacherSignal.FullLogits full:
            {
                var t = full.Logits.reshape(-1, v).detach().to(student.dtype);             // (N, V)
                var teacherLogp = (t / temperatureScalar).log_softmax(-1);                       // (N, V)
                kl = (teacherLogp.exp() * (teacherLogp - studentLogp)).sum(-1);            // (N)
                if (o.Gamma > 0) mse = (student - t).pow(Scalars.Two).mean([-1]);                    // (N)
                break;
            }
            case TeacherSignal.TopK top:
            {
                if (o.Gamma > 0) throw new ArgumentException("Gamma (logit MSE) needs full teacher logits, not top-k.", nameof(options));
                long k = top.Ids.shape[^1];
                var ids = top.Ids.reshape(-1, k);                                          // (N, k)
                var probs = top.Probs.reshape(-1, k).detach().to(student.dtype);           // (N, k)
                // Renormalise p^(1/T) over the k ids in log space; the clamp keeps a zero probability from making 0·(−∞) = NaN.
                using var tiny = 1e-30.ToScalar();
                var scaled = probs.clamp_min(tiny).log() / temperatureScalar;                   // (N, k)
                var teacherLogp = scaled - scaled.logsumexp(-1, keepdim: true);            // (N, k)
                kl = (teacherLogp.exp() * (teacherLogp - studentLogp.gather(-1, ids))).sum(-1); // (N)
                break;
            }
            default:
                throw new ArgumentException($"unknown teacher signal {teacher.GetType().Name}.", nameof(teacher));
        }

        var contributes = labels is null
            ? ones(student.shape[0], ScalarType.Bool, student.device)
            : labels.reshape(-1).ne(Scalars.IgnoreIndex);                      // (N)
        var weight = contributes.to(student.dtype);                                         // (N)
        var klSum = (kl * weight).sum();
        using var softWeight = (o.SoftWeight * temperature * temperature).ToScalar();
        var sum = klSum * softWeight;
        var metrics = new Dictionary<string, double> { ["kl"] = LossTerms.Scalar(klSum) };
        if (labels is not null)
        {
            var ce = nn.functional.cross_entropy(student, labels.reshape(-1), ignore_index: LanguageModelLosses.IgnoreIndex, reduction: nn.Reduction.Sum);
            using var alpha = o.Alpha.ToScalar();
            sum = sum.add(ce * alpha, Scalars.One);
            metrics["ce"] = LossTerms.Scalar(ce);
        }
        if (mse is not null)
        {
            var mseSum = (mse * weight).sum();
            using var gamma = o.Gamma.ToScalar();
            sum = sum.add(mseSum * gamma, Scalars.One);
            metrics["mse"] = LossTerms.Scalar(mseSum);
        }
        return new LossTerms(sum, LossTerms.CountOf(contributes)) { Metrics = metrics };
    }
}
