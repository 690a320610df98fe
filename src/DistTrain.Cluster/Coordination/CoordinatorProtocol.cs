using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>Requests to the coordinator from the node it runs on (the job API and the local runner).</summary>
public interface ICoordinatorRequest;

/// <summary>
/// Run one data-parallel stage of a job; the sender receives <see cref="StageFinished"/>, and meanwhile every
/// <see cref="GenerationStarted"/>, <see cref="StepCompleted"/> and accepted <see cref="CheckpointSaved"/> of the run.
/// </summary>
/// <param name="Priority">Higher runs first when several stages wait for workers; ties go in arrival order.</param>
/// <param name="Resume">The stage's last recorded checkpoint, when it is re-dispatched after a coordinator restart.</param>
/// <param name="FirstGeneration">Generations of this run start after it (see <see cref="DataParallelRun"/>).</param>
/// <param name="RestartsUsed">Restarts earlier attempts of the stage used; the run counts on from it against the budget.</param>
public sealed record RunStage(string JobId, string Stage, string SpecYaml, bool Quick, RunLimits Limits, GradientAggregation Aggregation, GradientWire Wire,
    int Priority = 0, RunResume? Resume = null, int FirstGeneration = 0, int RestartsUsed = 0) : ICoordinatorRequest;

/// <summary>
/// Run one inference stage (label) as <paramref name="ShardCount"/> shards spread over free workers, at most
/// <paramref name="MaxWorkers"/> at once; the sender receives <see cref="StageFinished"/> and every <see cref="ShardDone"/>.
/// </summary>
public sealed record RunInference(string JobId, string Stage, string SpecYaml, bool Quick, int ShardCount, int MaxWorkers, int Priority = 0) : ICoordinatorRequest;

/// <summary>Stop a stage at its next step boundary, keeping its last checkpoint (a cancelled job); answered by its <see cref="StageFinished"/>.</summary>
public sealed record StopStage(string JobId, string Stage, string Reason) : ICoordinatorRequest;

/// <summary>The outcome of a <see cref="RunStage"/>; <paramref name="Stopped"/> when a <see cref="StopStage"/> ended it.</summary>
public sealed record StageFinished(string JobId, string Stage, bool Succeeded, string Summary, string? LastCheckpoint, int Restarts, bool Stopped = false) : ICoordinatorRequest;

/// <summary>Asks for the registered workers; answered with <see cref="WorkersSnapshot"/>.</summary>
public sealed record GetWorkers : ICoordinatorRequest
{
    public static readonly GetWorkers Instance = new();
}

/// <summary>Registered workers and what each is doing.</summary>
public sealed record WorkersSnapshot(IReadOnlyList<WorkerStatus> Workers);

/// <summary>One worker as the coordinator sees it.</summary>
public sealed record WorkerStatus(string WorkerId, string Node, string Device, string? JobId, string? Stage, int? Rank);

/// <summary>Published on the coordinator node's event stream when a run forms a new group (metrics, watchers, tests).</summary>
public sealed record GenerationStarted(string JobId, string Stage, int Generation, IReadOnlyList<string> Workers, int RestartsUsed);

/// <summary>Published on the coordinator node's event stream when a registered worker is lost (metrics, watchers).</summary>
public sealed record WorkerLost(string WorkerId, string Reason);
