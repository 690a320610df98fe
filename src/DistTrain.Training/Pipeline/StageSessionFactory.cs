using DistTrain.Contracts.Specs;
using DistTrain.Training.Engine;
using TorchSharp;

namespace DistTrain.Training.Pipeline;

/// <summary>Opens <see cref="StageSession"/>s for the cluster's workers from the spec text the coordinator sends.</summary>
/// <param name="dataRoot">This node's data root (DISTTRAIN_DATA_ROOT): where the spec's data paths are read.</param>
public sealed class StageSessionFactory(string? dataRoot = null) : ITrainingSessionFactory
{
    public ITrainingSession Open(SessionRequest request, IGradientReducer reducer)
    {
        var result = JobSpecs.Load(request.SpecYaml, quick: request.Quick);
        if (result.Spec is null)
            throw new ArgumentException($"job {request.JobId}: invalid spec: {string.Join("; ", result.Errors.Select(e => e.ToString()))}");
        var stage = result.Spec.Stage(request.Stage) ?? throw new ArgumentException($"job {request.JobId}: no stage '{request.Stage}'");
        var artifacts = new StageArtifacts(request.RunRoot, request.JobId, request.Stage, dataRoot);
        return new StageSession(result.Spec, stage, artifacts, new torch.Device(request.Device), reducer, request.ResumeFrom, request.Generation);
    }
}
