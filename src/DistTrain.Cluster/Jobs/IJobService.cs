using DistTrain.Contracts.Specs;

namespace DistTrain.Cluster.Jobs;

/// <summary>
/// The closed set of states of a job and of each of its stages. Transitions (one table, see docs/jobs.md):
/// Queued → Running | Cancelled; Running → Succeeded | Failed | Cancelled (and Running → Queued when the
/// coordinator restarts mid-stage and the stage waits for workers again). Succeeded, Failed and Cancelled are final.
/// </summary>
public enum JobState { Queued, Running, Succeeded, Failed, Cancelled }

public static class JobStates
{
    public static bool IsFinal(this JobState s) => s is JobState.Succeeded or JobState.Failed or JobState.Cancelled;
}

/// <summary>One stage of a job as a client sees it.</summary>
/// <param name="Metrics">The stage's final metrics once it succeeded (what its metrics.json holds, plus <c>restarts</c> for training stages); empty before.</param>
/// <param name="Error">Why the stage failed or was cancelled.</param>
public sealed record StageView(string Name, string Kind, JobState State, int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics, string? Error = null);

/// <summary>One job as a client sees it.</summary>
public sealed record JobView(string JobId, string Name, int Priority, JobState State, DateTimeOffset Submitted,
    IReadOnlyList<StageView> Stages, string? Error);

/// <summary>What happened in a job; a closed set, each carried by a <see cref="JobEvent"/>.</summary>
public abstract record JobEventBody;

/// <summary>A stage entered a new state.</summary>
public sealed record StageChanged(StageView Stage) : JobEventBody;

/// <summary>Training progress of one rank at one step.</summary>
public sealed record StageProgress(string Stage, int Rank, int Step, int TotalSteps, double Loss, double TokensPerSecond) : JobEventBody;

/// <summary>Metrics of an evaluation (a stage's final metrics, or an evaluate stage).</summary>
public sealed record StageEvaluated(string Stage, int Step, IReadOnlyDictionary<string, double> Metrics) : JobEventBody;

/// <summary>A checkpoint of a stage is saved and recorded: from now on a restart of the stage resumes from it.</summary>
public sealed record StageCheckpointSaved(string Stage, int Step, string Path) : JobEventBody;

/// <summary>Something went wrong (a stage failed, a worker was lost and the group re-formed, …).</summary>
public sealed record JobError(string Message) : JobEventBody;

/// <summary>The job reached a final state; always the last event of a job.</summary>
public sealed record JobFinished(JobView Job) : JobEventBody;

/// <summary>An event of a job, numbered from 1 without gaps so a watcher can resume after the last one it saw.</summary>
public sealed record JobEvent(long Sequence, DateTimeOffset Time, JobEventBody Body);

/// <summary>A registered worker and what it runs.</summary>
public sealed record WorkerView(string WorkerId, string Node, string Device, string? JobId, string? Stage, int? Rank, string Health);

/// <summary>The outcome of a submission: a job id, or every error with the path of the bad field.</summary>
public sealed record SubmitOutcome(string? JobId, IReadOnlyList<SpecError> Errors)
{
    public bool Accepted => JobId is not null;
}

/// <summary>The outcome of a cancellation request.</summary>
public enum CancelOutcome { Cancelling, NotFound, AlreadyEnded }

/// <summary>
/// The job API of a coordinator node, independent of its transport: the gRPC service maps it to the wire,
/// and tests and the local runner can call it directly. Every call has a timeout; none hangs.
/// </summary>
public interface IJobService
{
    /// <summary>Validates (against the node's data root) and enqueues a spec durably before answering.</summary>
    Task<SubmitOutcome> SubmitAsync(string specYaml, bool quick, CancellationToken ct);

    /// <returns>null for an unknown id.</returns>
    Task<JobView?> GetAsync(string jobId, CancellationToken ct);

    /// <summary>Newest first; <paramref name="limit"/> 0 means the server's default.</summary>
    Task<IReadOnlyList<JobView>> ListAsync(JobState? state, string? name, int limit, CancellationToken ct);

    Task<(CancelOutcome Outcome, JobView? Job)> CancelAsync(string jobId, CancellationToken ct);

    /// <summary>
    /// The job's events after <paramref name="afterSequence"/>, live until the job ends (the stream then completes
    /// after <see cref="JobFinished"/>). Throws <see cref="KeyNotFoundException"/> for an unknown id.
    /// </summary>
    IAsyncEnumerable<JobEvent> WatchAsync(string jobId, long afterSequence, CancellationToken ct);

    Task<IReadOnlyList<WorkerView>> WorkersAsync(CancellationToken ct);
}

/// <summary>Published on the coordinator node's event stream for every persisted job event (metrics, tests).</summary>
public sealed record JobActivity(string JobId, string JobName, JobEvent Event);

/// <summary>Published on the coordinator node's event stream whenever the job queue changes.</summary>
public sealed record JobQueueChanged(int Queued, int Running);
