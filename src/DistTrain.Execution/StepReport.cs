namespace DistTrain.Execution;

/// <summary>What one optimizer step did, identical on every rank (it is computed from reduced values).</summary>
public sealed record StepReport(int Step, double Loss, long Targets, double GradNorm, double LearningRate, double Seconds, double ReduceSeconds, double DataSeconds = 0)
{
    /// <summary>
    /// Seconds spent inside all-reduces, counted on the thread that made them. <see cref="ReduceSeconds"/> is the part
    /// the step waited for (exposed); with gradient buckets overlapping backward, CommSeconds can exceed it.
    /// </summary>
    public double CommSeconds { get; init; }

    /// <summary>Examples in the global batch of this step.</summary>
    public int Examples { get; init; }

    /// <summary>Validation metrics, on the steps where the stage evaluated.</summary>
    public IReadOnlyDictionary<string, double>? Evaluation { get; init; }
}

/// <summary>A step whose loss or gradient was NaN or infinite on some rank; no parameter was changed.</summary>
public sealed class NonFiniteLossException(int step, string what)
    : Exception($"step {step}: {what} is not finite; the update was skipped and parameters are unchanged")
{
    public int Step { get; } = step;
}
