namespace DistTrain.Contracts.Protocols;

/// <summary>Messages between the coordinator singleton and the worker actors (one per device). Control only: no tensor bytes.</summary>
public interface IWorkerProtocol;

/// <summary>Where a worker listens for gradient traffic (the data plane), separate from Akka remoting.</summary>
public sealed record DataPlaneEndpoint(string Host, int Port);

/// <summary>A worker announces itself; re-sent until acknowledged, because the singleton can move.</summary>
public sealed record RegisterWorker(string WorkerId, string Node, string Device, DataPlaneEndpoint DataPlane) : IWorkerProtocol;

/// <summary>The coordinator acknowledges a registration.</summary>
public sealed record WorkerRegistered(string WorkerId) : IWorkerProtocol;

/// <summary>
/// Join a process group for one stage of one job. <paramref name="Generation"/> increases every time the
/// group is re-formed (death, join), and every later message carries it, so stale messages are dropped.
/// </summary>
/// <param name="Peers">Data-plane endpoints indexed by rank.</param>
/// <param name="Quick">The job runs its spec's quick (smoke) transform.</param>
/// <param name="ResumeFrom">Checkpoint directory to load before the first step; null starts fresh.</param>
/// <param name="Aggregation">How gradients are summed: <see cref="GradientAggregation"/>.</param>
/// <param name="Reducer">The coordinator's reducer endpoint in coordinator mode; null for ring.</param>
/// <param name="GroupSecret">The generation's 32-byte data-plane secret (fresh from a CSPRNG each generation): every
/// gradient connection proves it and keys its frame tags with it. Printed as <c>System.Byte[]</c>, never its value; not journaled.</param>
public sealed record PrepareGroup(
    string JobId, string Stage, int Generation, int Rank, int WorldSize,
    IReadOnlyList<DataPlaneEndpoint> Peers, string SpecYaml, bool Quick, string? ResumeFrom,
    GradientAggregation Aggregation, GradientWire Wire, DataPlaneEndpoint? Reducer, byte[] GroupSecret) : IWorkerProtocol;

/// <summary>Who sums the gradients: the coordinator's reducer, or a ring among the workers.</summary>
public enum GradientAggregation { Coordinator, Ring }

/// <summary>Number format of gradient bytes on the data plane; accumulation is always fp32.</summary>
public enum GradientWire { Fp32, Bf16, Fp16 }

/// <summary>The worker loaded its model and data, restored the checkpoint and connected to its peers.</summary>
public sealed record GroupPrepared(string JobId, string Stage, int Generation, int Rank, int NextStep) : IWorkerProtocol;

/// <summary>Run steps [FromStep, ToStep); the all-reduce keeps ranks in lock step, so the coordinator need not drive every step.</summary>
public sealed record RunSteps(string JobId, string Stage, int Generation, int FromStep, int ToStep, bool ChecksumAtEnd) : IWorkerProtocol;

/// <summary>Per-step figures of one rank (a few numbers; they feed metrics and the straggler gap).</summary>
/// <param name="StepSeconds">Wall time the rank spent in the step: data, forward/backward, all-reduce, periodic evaluation.</param>
/// <param name="ReduceSeconds">Of that, the time inside gradient and count all-reduces (including waiting for slower ranks).</param>
/// <param name="ReduceBytes">Bytes of the buffers this rank all-reduced in the step, in their wire format.</param>
/// <param name="CommSeconds">Time all-reduces ran, on whichever thread ran them; above ReduceSeconds when gradient buckets overlap backward.</param>
/// <param name="EndedTicks">When the rank finished the step (<see cref="DateTime.UtcNow"/> ticks): reports travel in
/// batches (<see cref="StepsCompleted"/>), so their arrival times say nothing about the step cadence; 0 = not stamped.</param>
public sealed record StepCompleted(
    string JobId, string Stage, int Generation, int Rank, int Step,
    double Loss, double GradNorm, double LearningRate, long Targets,
    double StepSeconds, double ReduceSeconds, double DataSeconds, string? ParameterChecksum, long ReduceBytes = 0, double CommSeconds = 0,
    long EndedTicks = 0) : IWorkerProtocol;

/// <summary>
/// One rank's step reports in step order, sent as one message: a remote message per step woke a thread pool thread,
/// the remoting writer and the TLS event loop on the worker and as many on the coordinator, and on a machine whose
/// cores all run ranks every wake-up takes CPU from a training thread (docs/benchmarks.md). A worker sends its
/// pending reports at the end of every <see cref="RunSteps"/> window, before the oldest would wait longer than
/// <c>StepReportBatch.MaxDelay</c>, and before a failure report.
/// </summary>
public sealed record StepsCompleted(StepCompleted[] Steps) : IWorkerProtocol;

/// <summary>Save a checkpoint after step <paramref name="Step"/> (rank 0 writes; the others acknowledge).</summary>
public sealed record SaveCheckpoint(string JobId, string Stage, int Generation, int Step) : IWorkerProtocol;

/// <summary>A checkpoint is on shared storage; <paramref name="Seconds"/> is how long writing it took.</summary>
public sealed record CheckpointSaved(string JobId, string Stage, int Generation, int Rank, int Step, string Path, double Seconds = 0) : IWorkerProtocol;

/// <summary>Leave the group now: close data-plane sockets (which unblocks any collective in flight) and drop the session.</summary>
public sealed record AbortGroup(string JobId, string Stage, int Generation, string Reason) : IWorkerProtocol;

/// <summary>A rank's session failed. <paramref name="SuspectRank"/> names the peer the data plane lost, when known.</summary>
public sealed record SessionFailed(string JobId, string Stage, int Generation, int Rank, int Step, string Reason, int? SuspectRank) : IWorkerProtocol;

/// <summary>The one naming rule for data-plane groups, shared by the coordinator's reducer and the workers: one job may run several stages at once.</summary>
public static class DataPlaneGroups
{
    public static string Id(string jobId, string stage) => $"{jobId}/{stage}";
}

/// <summary>
/// Label shard <paramref name="Shard"/> of <paramref name="ShardCount"/> of an inference stage on this worker's device
/// (distributed inference: shards are spread over free workers). A shard already on shared storage with a valid
/// checksum is reused, so a re-dispatched stage only does the shards it lacks.
/// </summary>
public sealed record RunShard(string JobId, string Stage, string SpecYaml, bool Quick, int Shard, int ShardCount) : IWorkerProtocol;

/// <summary>A shard is on shared storage; <paramref name="Reused"/>: it was already there from an earlier attempt.</summary>
public sealed record ShardDone(string JobId, string Stage, int Shard, int Examples, double Seconds, bool Reused) : IWorkerProtocol;

/// <summary>A shard failed on this worker.</summary>
public sealed record ShardFailed(string JobId, string Stage, int Shard, string Reason) : IWorkerProtocol;
