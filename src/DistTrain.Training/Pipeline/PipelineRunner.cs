using DistTrain.Contracts.Specs;
using DistTrain.Training.Checkpointing;
using DistTrain.Training.Engine;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>Callbacks a front end (the CLI's progress bars) receives while a pipeline runs.</summary>
public interface IPipelineObserver
{
    void StageStarted(StageSpec stage, int totalSteps);
    void StepCompleted(StageSpec stage, StepReport report);
    void InferenceProgress(StageSpec stage, int done, int total);
    void StageFinished(StageSpec stage, IReadOnlyDictionary<string, double> metrics);
}

/// <summary>Every stage's final metrics, as <c>report.json</c> holds them.</summary>
public sealed record PipelineReport(string Job, string RunDirectory, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Stages);

/// <summary>
/// Runs a whole job spec in this process, stage by stage in dependency order, on one device: the reference the
/// cluster must match, and what <c>disttrain run</c> does. Each stage writes <c>metrics.json</c>; the run writes
/// <c>report.json</c>. With <c>resume</c>, a stage continues from its newest checkpoint and a finished stage is skipped.
/// </summary>
/// <param name="dataRoot">The folder the spec's <c>data.path</c> and <c>tokenizer.path</c> are relative to; null for specs that read only built-in corpora.</param>
public sealed class PipelineRunner(string runRoot, string jobId, Device device, IPipelineObserver? observer = null, string? dataRoot = null)
{
    public string RunDirectory => Path.Combine(runRoot, jobId);

    public PipelineReport Run(JobSpec job, bool resume = false)
    {
        Directory.CreateDirectory(RunDirectory);
        var results = new Dictionary<string, IReadOnlyDictionary<string, double>>();
        foreach (var stage in StageGraph.TopologicalOrder(job))
        {
            var artifacts = new StageArtifacts(runRoot, jobId, stage.Name, dataRoot);
            observer?.StageStarted(stage, stage.Kind.Trains() ? stage.Train.Steps : 0);
            IReadOnlyDictionary<string, double> metrics = stage.Kind switch
            {
                StageKind.Label => InferenceStages.Label(job, stage, artifacts, device, (d, t) => observer?.InferenceProgress(stage, d, t)),
                StageKind.Evaluate => InferenceStages.Evaluate(job, stage, artifacts, device, (d, t) => observer?.InferenceProgress(stage, d, t)),
                _ => Train(job, stage, artifacts, resume),
            };
            results[stage.Name] = metrics;
            observer?.StageFinished(stage, metrics);
            RunReport.Write(RunDirectory, job.Name, results);
        }
        return new PipelineReport(job.Name, RunDirectory, results);
    }

    /// <summary>One training stage at world size 1, checkpointing every <c>checkpoint_every</c> steps and at the end.</summary>
    public IReadOnlyDictionary<string, double> Train(JobSpec job, StageSpec stage, StageArtifacts artifacts, bool resume)
    {
        string? latest = resume ? new CheckpointStore(artifacts.Checkpoints).Latest() : null;
        if (latest is not null && CheckpointStore.ReadState(latest).Step >= stage.Train.Steps && File.Exists(artifacts.Metrics))
            return RunReport.ReadStageMetrics(artifacts);
        if (!resume && Directory.Exists(artifacts.Directory)) Directory.Delete(artifacts.Directory, recursive: true);

        using var session = new StageSession(job, stage, artifacts, device, LocalReducer.Instance, latest);
        int every = stage.Train.CheckpointEvery;
        for (int step = session.NextStep; step < session.TotalSteps; step++)
        {
            var report = session.RunStep(step);
            observer?.StepCompleted(stage, report);
            if (every > 0 && (step + 1) % every == 0 && step + 1 < session.TotalSteps) session.SaveCheckpoint();
        }
        session.SaveCheckpoint();
        return RunReport.ReadStageMetrics(artifacts);
    }
}
