using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;

namespace DistTrain.Cluster.Jobs;

/// <summary>A stage of a cluster job ended; <see cref="Metrics"/> is what its metrics.json holds.</summary>
public sealed record ClusterStageResult(string Stage, bool Succeeded, string Summary, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A finished cluster job: its id (the folder under the run root) and every stage's outcome.</summary>
public sealed record ClusterJobResult(string JobId, JobState State, IReadOnlyList<ClusterStageResult> Stages);

/// <summary>
/// Submits a spec to the job manager and follows it to the end — what `disttrain local --run` and the cluster tests
/// do. Scheduling is the job manager's; this only submits and watches.
/// </summary>
public sealed class ClusterJobRunner(IJobService jobs)
{
    public async Task<ClusterJobResult> RunAsync(string specYaml, bool quick, Action<JobEvent>? onEvent = null, CancellationToken ct = default)
    {
        var submitted = await jobs.SubmitAsync(specYaml, quick, ct);
        if (!submitted.Accepted) throw new ArgumentException("invalid spec: " + string.Join("; ", submitted.Errors));
        JobView? final = null;
        await foreach (var e in jobs.WatchAsync(submitted.JobId!, 0, ct))
        {
            onEvent?.Invoke(e);
            if (e.Body is JobFinished f) final = f.Job;
        }
        final ??= await jobs.GetAsync(submitted.JobId!, ct) ?? throw new InvalidOperationException($"job {submitted.JobId} vanished");
        return new ClusterJobResult(final.JobId, final.State, final.Stages.Select(s => new ClusterStageResult(s.Name, s.State == JobState.Succeeded,
            s.State == JobState.Succeeded ? "succeeded" : $"{s.State.ToString().ToLowerInvariant()}: {s.Error}", s.Metrics)).ToList());
    }
}

/// <summary>How a training stage of a spec becomes a coordinator request.</summary>
public static class StageRequests
{
    /// <summary>The coordinator's request for one training stage, with the limits its spec sets.</summary>
    public static RunStage For(string jobId, string specYaml, bool quick, StageSpec stage)
    {
        var d = stage.Distributed;
        var limits = new RunLimits(stage.Train.Steps, d.MinWorkers, d.MaxWorkers, d.MaxRestarts,
            stage.Train.CheckpointEvery, d.ChecksumEvery);
        var aggregation = d.Aggregation == Aggregation.Ring ? GradientAggregation.Ring : GradientAggregation.Coordinator;
        var wire = d.Wire switch { WireFormat.Bf16 => GradientWire.Bf16, WireFormat.Fp16 => GradientWire.Fp16, _ => GradientWire.Fp32 };
        return new RunStage(jobId, stage.Name, specYaml, quick, limits, aggregation, wire);
    }
}
