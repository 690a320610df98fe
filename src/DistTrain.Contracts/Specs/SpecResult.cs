namespace DistTrain.Contracts.Specs;

/// <summary>Outcome of parsing or loading a spec: the spec when there were no errors, else every error found.</summary>
public sealed record SpecResult(JobSpec? Spec, IReadOnlyList<SpecError> Errors)
{
    public bool Ok => Spec is not null && Errors.Count == 0;
}
