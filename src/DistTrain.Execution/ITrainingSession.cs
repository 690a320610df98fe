namespace DistTrain.Execution;

/// <summary>What a worker needs to open its part of a data-parallel stage.</summary>
/// <param name="RunRoot">Shared storage for this job's stage outputs and checkpoints (a PVC on Kubernetes).</param>
/// <param name="ResumeFrom">Checkpoint directory to restore before the first step; null starts from the stage's initial state.</param>
/// <param name="Quick">Apply the spec's quick transform (smoke runs), exactly as the submitter did.</param>
public sealed record SessionRequest(string JobId, string Stage, string SpecYaml, bool Quick, int Generation, int Rank, int WorldSize, string Device, string RunRoot, string? ResumeFrom);

/// <summary>
/// One rank's training session for one stage, as the cluster drives it. Every call runs on the device thread
/// and takes and returns plain values: the worker actor never sees a tensor.
/// </summary>
public interface ITrainingSession : IDisposable
{
    /// <summary>The step the session will run next (0, or the step after the restored checkpoint).</summary>
    int NextStep { get; }

    /// <summary>Total optimizer steps of the stage.</summary>
    int TotalSteps { get; }

    /// <summary>Runs one data-parallel step; all ranks must call it with the same step.</summary>
    StepReport RunStep(int step);

    /// <summary>A digest of every parameter's bytes; equal on all ranks unless a replica diverged.</summary>
    string ParameterChecksum();

    /// <summary>Writes a checkpoint after the last completed step and returns its directory.</summary>
    string SaveCheckpoint();
}

/// <summary>Creates sessions; the training engine implements it, the cluster host injects it into worker actors.</summary>
public interface ITrainingSessionFactory
{
    ITrainingSession Open(SessionRequest request, IGradientReducer reducer);
}
