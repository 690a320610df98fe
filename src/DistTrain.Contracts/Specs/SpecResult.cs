namespace DistTrain.Contracts.Specs;

/// <summary>Outcome of parsing or loading a spec: the spec when there were no errors, else every error found.</summary>
public sealed record SpecResult(JobSpec? Spec, IReadOnlyList<SpecError> Errors)
{
    public bool Ok => Spec is not null && Errors.Count == 0;

    /// <summary>
    /// The effective spec text of a loaded spec: the text given, with the model sections that <see cref="JobSpecs.Load"/>
    /// filled from Hugging Face config.json files. It is what a job stores and sends to workers. Null when not loaded.
    /// </summary>
    public string? Yaml { get; init; }
}
