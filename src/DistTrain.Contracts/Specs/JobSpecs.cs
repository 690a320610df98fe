namespace DistTrain.Contracts.Specs;

/// <summary>The entry point for callers: parse then validate, in one call, identically for <c>run</c> and <c>submit</c>.</summary>
/// <remarks>
/// The CLI and the cluster should both pass the spec's text through here (submit sends the text, not a
/// serialised <see cref="JobSpec"/>), so one parser and one validator decide what a spec means.
/// </remarks>
public static class JobSpecs
{
    /// <summary>Parses and validates spec text. Spec is null unless there are no errors at all.</summary>
    /// <remarks>Validation runs only on a spec that parsed cleanly: it needs complete records to reason about.</remarks>
    /// <param name="dataRoot">If given, data paths are also checked on disk against it (symlinks included).</param>
    /// <param name="quick">Apply <see cref="QuickTransform"/> after validation.</param>
    public static SpecResult Load(string yaml, string? dataRoot = null, bool quick = false) =>
        Check(SpecParser.Parse(yaml), dataRoot, quick);

    /// <summary>Reads, parses and validates a spec file.</summary>
    public static SpecResult LoadFile(string path, string? dataRoot = null, bool quick = false) =>
        Check(SpecParser.ParseFile(path), dataRoot, quick);

    private static SpecResult Check(SpecResult parsed, string? dataRoot, bool quick)
    {
        if (parsed.Spec is null) return parsed;
        var errors = SpecValidator.Validate(parsed.Spec, dataRoot);
        if (errors.Count > 0) return new SpecResult(null, errors);
        return new SpecResult(quick ? QuickTransform.Apply(parsed.Spec) : parsed.Spec, []);
    }
}
