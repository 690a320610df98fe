namespace DistTrain.Execution;

/// <summary>
/// The tensor engine behind a node's actors, per device: training sessions for the worker actors, label shards for
/// distributed inference, and the coordinator node's evaluate and merge work. The host composes it from
/// DistTrain.Training; orchestration sees only these seams.
/// </summary>
/// <param name="SessionsOn">The session factory of a worker's device (e.g. "cpu", "cuda:0").</param>
/// <param name="ShardsOn">The label-shard runner of a worker's device.</param>
/// <param name="InferenceOn">The coordinator node's evaluate/merge runner on the given device.</param>
public sealed record NodeEngine(
    Func<string, ITrainingSessionFactory> SessionsOn,
    Func<string, IShardRunner> ShardsOn,
    Func<string, IInferenceRunner> InferenceOn);
