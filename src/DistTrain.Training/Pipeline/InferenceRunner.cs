using DistTrain.Contracts.Specs;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>The coordinator node's inference work, on one device of this process.</summary>
/// <param name="dataRoot">This node's data root (DISTTRAIN_DATA_ROOT).</param>
public sealed class InferenceRunner(string device = "cpu", string? dataRoot = null) : IInferenceRunner
{
    public IReadOnlyDictionary<string, double> Evaluate(JobSpec job, StageSpec stage, StageArtifacts artifacts, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (stage.Kind != StageKind.Evaluate) throw new ArgumentException($"stage '{stage.Name}' ({stage.Kind}) is not an evaluate stage");
        return InferenceStages.Evaluate(job, stage, artifacts with { DataRoot = artifacts.DataRoot ?? dataRoot }, new Device(device));
    }

    public IReadOnlyDictionary<string, double> MergeLabels(JobSpec job, StageSpec stage, StageArtifacts artifacts, int shardCount) =>
        InferenceStages.MergeLabels(job, stage, artifacts, shardCount);
}

/// <summary>Labels shards on a worker's device.</summary>
/// <param name="dataRoot">This node's data root (DISTTRAIN_DATA_ROOT).</param>
public sealed class ShardRunner(string? dataRoot = null) : IShardRunner
{
    public ShardResult Run(ShardRequest r, string device)
    {
        var parsed = JobSpecs.Load(r.SpecYaml, quick: r.Quick);
        if (!parsed.Ok) throw new ArgumentException("invalid spec: " + string.Join("; ", parsed.Errors));
        var job = parsed.Spec!;
        var stage = job.Stage(r.Stage) ?? throw new ArgumentException($"the spec has no stage '{r.Stage}'");
        return InferenceStages.LabelShard(job, stage, new StageArtifacts(r.RunRoot, r.JobId, r.Stage, dataRoot), new Device(device), r.Shard, r.ShardCount);
    }
}
