using DistTrain.Contracts.Specs;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>Runs a stage that does not train (label, evaluate) to completion; orchestration calls it without touching a tensor.</summary>
public interface IInferenceRunner
{
    /// <returns>The stage's final metrics (also written to its metrics.json).</returns>
    IReadOnlyDictionary<string, double> Run(JobSpec job, StageSpec stage, StageArtifacts artifacts, CancellationToken ct);
}

/// <summary>Runs inference stages on one device of this process.</summary>
public sealed class InferenceRunner(string device = "cpu") : IInferenceRunner
{
    public IReadOnlyDictionary<string, double> Run(JobSpec job, StageSpec stage, StageArtifacts artifacts, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var d = new Device(device);
        return stage.Kind switch
        {
            StageKind.Label => InferenceStages.Label(job, stage, artifacts, d),
            StageKind.Evaluate => InferenceStages.Evaluate(job, stage, artifacts, d),
            _ => throw new ArgumentException($"stage '{stage.Name}' ({stage.Kind}) trains; it is not an inference stage"),
        };
    }
}
