using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Worker;

/// <summary>
/// Published on the worker node's own event stream for every report a worker actor sends the coordinator
/// (<see cref="StepCompleted"/>, <see cref="CheckpointSaved"/>, <see cref="SessionFailed"/> with its cause), so the
/// node's metrics can export its ranks' figures. Wrapped, so a node that is also the coordinator can tell its own
/// ranks' reports from the ones the coordinator republishes.
/// </summary>
public sealed record WorkerReport(string WorkerId, IWorkerProtocol Message, Exception? Error = null);
