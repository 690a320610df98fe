using Akka.Actor;
using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Cluster.Jobs;

/// <summary>A stage of a cluster job ended; <see cref="Metrics"/> is what its metrics.json holds.</summary>
public sealed record ClusterStageResult(string Stage, bool Succeeded, string Summary, int Restarts, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// Runs a job spec on the cluster, stage by stage in dependency order: training stages through the coordinator
/// (data-parallel over its workers), label and evaluate stages on this node. Writes the same report.json as the
/// in-process runner, so both can be compared file for file.
/// </summary>
public sealed class ClusterJobRunner(IActorRef coordinator, string runRoot)
{
    public async Task<IReadOnlyList<ClusterStageResult>> RunAsync(string jobId, string specYaml, bool quick, Action<ClusterStageResult>? stageFinished = null, CancellationToken ct = default)
    {
        var parsed = JobSpecs.Load(specYaml, quick: quick);
        if (!parsed.Ok) throw new ArgumentException("invalid spec: " + string.Join("; ", parsed.Errors));
        var job = parsed.Spec!;
        var results = new List<ClusterStageResult>();
        var metrics = new Dictionary<string, IReadOnlyDictionary<string, double>>();
        foreach (var stage in StageGraph.TopologicalOrder(job))
        {
            var artifacts = new StageArtifacts(runRoot, jobId, stage.Name);
            ClusterStageResult result;
            if (stage.Kind.Trains())
            {
                var finished = await coordinator.Ask<StageFinished>(Request(jobId, specYaml, quick, stage), StageTimeout(stage), ct);
                result = new ClusterStageResult(stage.Name, finished.Succeeded, finished.Summary, finished.Restarts,
                    finished.Succeeded ? RunReport.ReadStageMetrics(artifacts) : new Dictionary<string, double>());
            }
            else
            {
                var m = stage.Kind == StageKind.Label
                    ? InferenceStages.Label(job, stage, artifacts, CPU)
                    : InferenceStages.Evaluate(job, stage, artifacts, CPU);
                result = new ClusterStageResult(stage.Name, true, "ran on the coordinator node", 0, m);
            }
            results.Add(result);
            stageFinished?.Invoke(result);
            if (!result.Succeeded) break;
            metrics[stage.Name] = result.Metrics;
            RunReport.Write(Path.Combine(runRoot, jobId), job.Name, metrics);
        }
        return results;
    }

    /// <summary>The coordinator's request for one training stage, with the limits its spec sets.</summary>
    public static RunStage Request(string jobId, string specYaml, bool quick, StageSpec stage)
    {
        var d = stage.Distributed;
        var limits = new RunLimits(stage.Train.Steps, d.MinWorkers, d.MaxWorkers, d.MaxRestarts,
            stage.Train.CheckpointEvery, d.ChecksumEvery);
        var aggregation = d.Aggregation == Aggregation.Ring ? GradientAggregation.Ring : GradientAggregation.Coordinator;
        var wire = d.Wire switch { WireFormat.Bf16 => GradientWire.Bf16, WireFormat.Fp16 => GradientWire.Fp16, _ => GradientWire.Fp32 };
        return new RunStage(jobId, stage.Name, specYaml, quick, limits, aggregation, wire);
    }

    // The coordinator enforces per-phase deadlines; this bound only keeps a lost reply from hanging the caller.
    private static TimeSpan StageTimeout(StageSpec stage) => TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(30.0 * stage.Train.Steps);
}
