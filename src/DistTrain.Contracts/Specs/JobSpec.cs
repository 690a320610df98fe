namespace DistTrain.Contracts.Specs;

/// <summary>Metrics an evaluate stage can report.</summary>
public enum Metric
{
    /// <summary>Classification accuracy (needs a classifier).</summary>
    Accuracy,
    /// <summary>Unweighted mean of per-class F1 (needs a classifier).</summary>
    MacroF1,
    /// <summary>exp(mean LM loss) (needs an mlm/clm/sft model).</summary>
    Perplexity,
    /// <summary>Fraction of examples where the model and <c>inputs.teacher</c> predict the same label.</summary>
    Agreement,
}

/// <summary>Earlier stages this stage reads. Each named stage is an implicit dependency (no need to repeat it in <c>needs</c>).</summary>
/// <param name="Init">Stage whose final checkpoint initialises this stage's model (the model shape is inherited from it), or
/// <c>hf:DIR</c>: a Hugging Face checkpoint directory under the data root (docs/interop.md).</param>
/// <param name="Teacher">Stage whose model labels data (label) or provides soft targets (distill) or is compared with (evaluate).</param>
/// <param name="Reference">Frozen reference policy for DPO.</param>
/// <param name="Labels">Label stage whose output is this stage's data; shorthand for <c>data.from</c>.</param>
public sealed record InputsSpec(string? Init = null, string? Teacher = null, string? Reference = null, string? Labels = null)
{
    /// <summary>Marks an <c>init</c> that is a Hugging Face checkpoint directory rather than a stage name.</summary>
    public const string HfPrefix = "hf:";

    /// <summary>The checkpoint directory (relative to the data root) when init is <c>hf:DIR</c>, else null.</summary>
    public string? HfInit => Init is { } i && i.StartsWith(HfPrefix, StringComparison.Ordinal) ? i[HfPrefix.Length..] : null;

    /// <summary>Every named input stage with its YAML key, in a fixed order (an <c>hf:</c> init names no stage).</summary>
    public IEnumerable<(string Key, string Stage)> Named()
    {
        if (Init is not null && HfInit is null) yield return ("init", Init);
        if (Teacher is not null) yield return ("teacher", Teacher);
        if (Reference is not null) yield return ("reference", Reference);
        if (Labels is not null) yield return ("labels", Labels);
    }
}

/// <summary>What a stage keeps and reports beyond its kind's main artefact.</summary>
/// <param name="KeepCheckpoints">Most recent checkpoints kept on disk (training stages).</param>
/// <param name="SoftLabels">Label stages: store the full class distribution rather than the argmax, for distillation.</param>
/// <param name="Metrics">Evaluate stages: metrics to compute; empty picks from the evaluated model's objective.</param>
/// <param name="Export">Training stages: also write the final model in this layout (<c>hf</c>: a Hugging Face directory <c>hf/</c> in the stage folder; docs/interop.md).</param>
public sealed record OutputsSpec(int KeepCheckpoints = 1, bool SoftLabels = false, IReadOnlyList<Metric>? Metrics = null, ExportFormat? Export = null);

/// <summary>Layouts a trained model can be exported in besides DistTrain's own checkpoint.</summary>
public enum ExportFormat { Hf }

/// <summary>One step of a pipeline: what it does, to which model, on which data, with which settings, reading which earlier stages.</summary>
/// <remarks>A spec, not a run: the scheduler turns it into stage instances with state; nothing here changes while a job runs.</remarks>
/// <param name="Needs">Stages that must finish first for ordering only; stages named in inputs or data are added implicitly.</param>
/// <param name="Objective">The loss; null for label and evaluate, which do not train.</param>
public sealed record StageSpec(
    string Name,
    StageKind Kind,
    IReadOnlyList<string> Needs,
    ModelSpec Model,
    ObjectiveSpec? Objective,
    DataSpec Data,
    TrainSpec Train,
    InputsSpec Inputs,
    OutputsSpec Outputs,
    DistributedSpec Distributed)
{
    /// <summary>All stages this one depends on: needs, then inputs, then <c>data.from</c>, without repeats.</summary>
    public IReadOnlyList<string> Dependencies()
    {
        var deps = new List<string>(Needs);
        foreach (var (_, stage) in Inputs.Named()) deps.Add(stage);
        if (Data.Source is StageOutput from) deps.Add(from.Stage);
        return deps.Distinct(StringComparer.Ordinal).ToList();
    }
}

/// <summary>A whole training pipeline as one document: the unit a user runs in-process or submits to the cluster.</summary>
/// <remarks>
/// Job-level <c>defaults</c> in YAML are folded into every stage by the parser, so each <see cref="StageSpec"/>
/// is complete and no consumer ever merges defaults again.
/// </remarks>
/// <param name="Priority">Scheduling priority, 0 (default) to <see cref="SpecLimits.MaxPriority"/>; higher runs first.</param>
/// <param name="Tokenizer">The job's tokenizer as written; null when the spec has no <c>tokenizer:</c> section (see <see cref="TokenizerOrDefault"/>).</param>
public sealed record JobSpec(string Name, int Seed, int Priority, IReadOnlyList<StageSpec> Stages, TokenizerSpec? Tokenizer = null)
{
    /// <summary>The tokenizer every stage reads text with: the declared one, else <see cref="TokenizerSpec.Default"/>.</summary>
    public TokenizerSpec TokenizerOrDefault => Tokenizer ?? TokenizerSpec.Default;

    /// <summary>The stage named <paramref name="name"/>, or null.</summary>
    public StageSpec? Stage(string name) => Stages.FirstOrDefault(s => s.Name == name);

    /// <summary>The seed a stage trains with: its own, else a stable mix of job seed and stage name.</summary>
    /// <remarks>Derived from the name, not the position, so inserting a stage does not reseed the others.</remarks>
    public int StageSeed(StageSpec stage)
    {
        if (stage.Train.Seed is int own) return own;
        // FNV-1a: stable across processes and .NET versions, unlike string.GetHashCode.
        uint hash = 2166136261;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(stage.Name)) hash = (hash ^ b) * 16777619;
        return (int)((hash ^ (uint)Seed) & 0x7FFFFFFF);
    }
}
