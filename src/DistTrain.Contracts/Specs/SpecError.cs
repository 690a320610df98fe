namespace DistTrain.Contracts.Specs;

/// <summary>One problem with a job spec (or a request carrying one), located by a path such as <c>stages[2].model.layers</c>.</summary>
/// <remarks>
/// Paths use the YAML keys (snake_case) so a user can find the line; <c>$</c> is the document itself, <c>spec</c> its
/// text as a whole; an empty path is a problem of the request around it. Errors travel as these records from the
/// validator to the API's field violations, never re-parsed from text.
/// </remarks>
public sealed record SpecError(string Path, string Message)
{
    public override string ToString() => Path.Length > 0 ? $"{Path}: {Message}" : Message;
}
