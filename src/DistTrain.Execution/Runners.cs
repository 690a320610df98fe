using DistTrain.Contracts.Specs;

namespace DistTrain.Execution;

/// <summary>The coordinator node's part of an inference stage (no tensors): joining what the workers produced.</summary>
public interface IInferenceRunner
{
    /// <summary>Joins the verified shards of a distributed label stage into its one checksummed label file.</summary>
    /// <returns>The stage's final metrics (also written to its metrics.json).</returns>
    IReadOnlyDictionary<string, double> MergeLabels(JobSpec job, StageSpec stage, StageArtifacts artifacts, int shardCount);
}

/// <summary>
/// How many shards an inference stage is cut into: fixed by its spec, so every attempt cuts the same shards and a label
/// stage reuses finished ones. An evaluate stage is one shard: one worker scores the whole split.
/// </summary>
public static class LabelShards
{
    public static int Count(StageSpec stage) => stage.Kind == StageKind.Evaluate ? 1 : Math.Clamp(2 * stage.Distributed.MaxWorkers, 4, 64);
}

/// <summary>One shard of a distributed inference stage (label; evaluate is one shard), as a worker receives it.</summary>
public sealed record ShardRequest(string JobId, string Stage, string SpecYaml, bool Quick, int Shard, int ShardCount, string RunRoot);

/// <summary>What a shard produced; <paramref name="Reused"/>: a valid copy was already on storage.</summary>
public sealed record ShardResult(int Examples, double Seconds, bool Reused);

/// <summary>Runs one shard of an inference stage on one device (labels it, or scores an evaluate stage); a worker calls it without touching a tensor.</summary>
public interface IShardRunner
{
    ShardResult Run(ShardRequest request, string device);
}
