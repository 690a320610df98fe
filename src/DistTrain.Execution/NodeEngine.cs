namespace DistTrain.Execution;

/// <summary>
/// The tensor engine behind a node's actors, per device: training sessions for the worker actors, inference shards
/// (label, evaluate) for the worker actors, and the coordinator node's merge of label shards. The host composes it from
/// DistTrain.Training; orchestration sees only these seams.
/// </summary>
/// <param name="SessionsOn">The session factory of a worker's device (e.g. "cpu", "cuda:0").</param>
/// <param name="ShardsOn">The inference-shard runner of a worker's device.</param>
/// <param name="Inference">The coordinator node's merge of label shards (no device: it joins files).</param>
public sealed record NodeEngine(
    Func<string, ITrainingSessionFactory> SessionsOn,
    Func<string, IShardRunner> ShardsOn,
    IInferenceRunner Inference);
