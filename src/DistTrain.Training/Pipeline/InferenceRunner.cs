using DistTrain.Contracts.Specs;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>The coordinator node's part of a label stage: joining the shards the workers wrote.</summary>
public sealed class InferenceRunner : IInferenceRunner
{
    public IReadOnlyDictionary<string, double> MergeLabels(JobSpec job, StageSpec stage, StageArtifacts artifacts, int shardCount) =>
        InferenceStages.MergeLabels(job, stage, artifacts, shardCount);
}

/// <summary>Runs inference shards on a worker's device: a shard of a label stage, or a whole evaluate stage (one shard).</summary>
/// <param name="dataRoot">This node's data root (DISTTRAIN_DATA_ROOT).</param>
public sealed class ShardRunner(string? dataRoot = null) : IShardRunner
{
    public ShardResult Run(ShardRequest r, string device)
    {
        var parsed = JobSpecs.Load(r.SpecYaml, quick: r.Quick);
        if (!parsed.Ok) throw new ArgumentException("invalid spec: " + string.Join("; ", parsed.Errors));
        var job = parsed.Spec!;
        var stage = job.Stage(r.Stage) ?? throw new ArgumentException($"the spec has no stage '{r.Stage}'");
        var artifacts = new StageArtifacts(r.RunRoot, r.JobId, r.Stage, dataRoot);
        if (stage.Kind != StageKind.Evaluate)
            return InferenceStages.LabelShard(job, stage, artifacts, new Device(device), r.Shard, r.ShardCount);
        if (r.ShardCount != 1) throw new ArgumentException($"evaluate stage '{r.Stage}' is one shard, not {r.ShardCount}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var metrics = InferenceStages.Evaluate(job, stage, artifacts, new Device(device));   // writes the stage's metrics.json
        return new ShardResult((int)metrics.GetValueOrDefault("examples", metrics.GetValueOrDefault("count")), clock.Elapsed.TotalSeconds, Reused: false);
    }
}
