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
    /// <param name="checkpoints">With a data root: fills the model section of stages with an <c>hf:</c> init from their
    /// config.json and refuses written fields that contradict it (<see cref="HfModelSections"/>); the result's
    /// <see cref="SpecResult.Yaml"/> is then the effective text to store and send to workers.</param>
    public static SpecResult Load(string yaml, string? dataRoot = null, bool quick = false, ICheckpointModelReader? checkpoints = null)
    {
        if (dataRoot is null || checkpoints is null || SpecInputTooBig(yaml))
            return Check(SpecParser.Parse(yaml), yaml, dataRoot, quick);
        var filled = HfModelSections.Fill(yaml, dataRoot, checkpoints);
        var parsed = SpecParser.Parse(filled.Yaml);
        if (filled.Errors.Count > 0)
        {
            // A stage whose checkpoint cannot be read has no model to parse: report why, not the fields it lacks.
            var unread = filled.Errors.Select(e => e.Path[..e.Path.LastIndexOf(".inputs.init", StringComparison.Ordinal)] + ".model").ToList();
            var rest = parsed.Errors.Where(e => !unread.Any(u => e.Path.StartsWith(u, StringComparison.Ordinal)));
            return new SpecResult(null, filled.Errors.Concat(rest).ToList());
        }
        if (parsed.Spec is not null && HfModelSections.Contradictions(parsed.Spec, filled) is { Count: > 0 } contradictions)
            return new SpecResult(null, contradictions);
        return Check(parsed, filled.Yaml, dataRoot, quick);
    }

    /// <summary>Reads, parses and validates a spec file.</summary>
    public static SpecResult LoadFile(string path, string? dataRoot = null, bool quick = false, ICheckpointModelReader? checkpoints = null)
    {
        var (yaml, failure) = SpecParser.ReadFile(path);
        return failure ?? Load(yaml!, dataRoot, quick, checkpoints);
    }

    private static bool SpecInputTooBig(string yaml) => System.Text.Encoding.UTF8.GetByteCount(yaml) > SpecLimits.MaxSpecBytes;

    private static SpecResult Check(SpecResult parsed, string yaml, string? dataRoot, bool quick)
    {
        if (parsed.Spec is null) return parsed;
        var errors = SpecValidator.Validate(parsed.Spec, dataRoot);
        if (errors.Count > 0) return new SpecResult(null, errors);
        return new SpecResult(quick ? QuickTransform.Apply(parsed.Spec) : parsed.Spec, []) { Yaml = yaml };
    }
}
