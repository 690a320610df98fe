namespace DistTrain.Execution;

/// <summary>
/// The tensor engine behind a node's actors, per device: training sessions for the worker actors, inference shards
/// (label, evaluate) for the worker actors, and the coordinator node's merge of label shards. The host composes it from
/// DistTrain.Training; orchestration sees only these seams.
/// </summary>
/// <param name="SessionsOn">The session factory of a worker's device (e.g. "cpu", "cuda:0").</param>
/// <param name="ShardsOn">The inference-shard runner of a worker's device.</param>
/// <param name="Inference">The coordinator node's merge of label shards (no device: it joins files).</param>
/// <param name="Checkpoints">The reader of Hugging Face config.json files with which the job manager fills the model
/// section of stages with an <c>hf:</c> init at submission (Contracts' HfModelSections); null: such stages must write it.</param>
public sealed record NodeEngine(
    Func<string, ITrainingSessionFactory> SessionsOn,
    Func<string, IShardRunner> ShardsOn,
    IInferenceRunner Inference,
    DistTrain.Contracts.Specs.ICheckpointModelReader? Checkpoints = null);
