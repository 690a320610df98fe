using DistTrain.Contracts.Specs;

namespace DistTrain.Execution;

/// <summary>The inference work of the coordinator node; orchestration calls it without touching a tensor.</summary>
public interface IInferenceRunner
{
    /// <summary>Runs an evaluate stage to completion.</summary>
    /// <returns>The stage's final metrics (also written to its metrics.json).</returns>
    IReadOnlyDictionary<string, double> Evaluate(JobSpec job, StageSpec stage, StageArtifacts artifacts, CancellationToken ct);

    /// <summary>Joins the verified shards of a distributed label stage into its one checksummed label file.</summary>
    /// <returns>The stage's final metrics (also written to its metrics.json).</returns>
    IReadOnlyDictionary<string, double> MergeLabels(JobSpec job, StageSpec stage, StageArtifacts artifacts, int shardCount);
}

/// <summary>How many shards a label stage is cut into: fixed by its spec, so every attempt cuts the same shards and reuses finished ones.</summary>
public static class LabelShards
{
    public static int Count(StageSpec stage) => Math.Clamp(2 * stage.Distributed.MaxWorkers, 4, 64);
}

/// <summary>One shard of a distributed label stage, as a worker receives it.</summary>
public sealed record ShardRequest(string JobId, string Stage, string SpecYaml, bool Quick, int Shard, int ShardCount, string RunRoot);

/// <summary>What a shard produced; <paramref name="Reused"/>: a valid copy was already on storage.</summary>
public sealed record ShardResult(int Examples, double Seconds, bool Reused);

/// <summary>Labels one shard on one device; a worker calls it without touching a tensor.</summary>
public interface IShardRunner
{
    ShardResult Run(ShardRequest request, string device);
}
