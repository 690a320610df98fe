namespace DistTrain.Contracts.Specs;

/// <summary>One problem with a job spec, located by a path such as <c>stages[2].model.layers</c>.</summary>
/// <remarks>
/// Paths use the YAML keys (snake_case) so a user can find the line; <c>$</c> is the document itself.
/// </remarks>
public sealed record SpecError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}
