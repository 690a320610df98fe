namespace DistTrain.Contracts.Specs;

/// <summary>Everything the spec layer knows about one objective, in one place.</summary>
/// <param name="StageKinds">The stage kinds it trains in.</param>
/// <param name="Keys">YAML keys its mapping form accepts, <c>kind</c> included.</param>
/// <param name="Schema">The records it reads from a file of the user's (docs/data.md).</param>
/// <param name="Summary">One line for the reference docs.</param>
/// <param name="Families">The model families it trains.</param>
/// <param name="FamilyNeed">How an error names those families ("the gpt family"), with a hint after a ';' if any.</param>
public sealed record ObjectiveDescriptor(
    ObjectiveKind Kind,
    IReadOnlyList<StageKind> StageKinds,
    IReadOnlyList<string> Keys,
    Func<ObjectiveSpec, RecordSchema> Schema,
    string Summary,
    IReadOnlyList<ModelFamily> Families,
    string FamilyNeed)
{
    /// <summary>Why <paramref name="family"/> cannot train this objective, or null when it can.</summary>
    public string? FamilyProblem(ModelFamily family)
    {
        if (Families.Contains(family)) return null;
        string name = SpecNames.Of(Kind);
        // A family with a pre-training objective of its own (XLNet, T5) takes no other.
        if (StageKinds.Contains(StageKind.Pretrain) && family.OwnObjective() is { } own)
            return $"{name} does not fit {SpecNames.Of(family)}; it pre-trains with {SpecNames.Of(own)}";
        var (need, hint) = FamilyNeed.Split(';') is [var n, var h] ? (n, ";" + h) : (FamilyNeed, "");
        return $"{name} needs {need}, not {SpecNames.Of(family)}{hint}";
    }
}

/// <summary>
/// The one table of objectives: the parser reads their keys, the validator their stage kinds, families and schemas,
/// the runner their schemas, and <c>docs/spec-reference.md</c>'s objective table is checked against it by a test. A new
/// objective or data schema is a new row here (plus its training code).
/// </summary>
public static class ObjectiveDescriptors
{
    private static RecordSchema Text(ObjectiveSpec _) => RecordSchema.Text;
    private static readonly ModelFamily[] Any = Enum.GetValues<ModelFamily>();
    private static readonly ModelFamily[] Encoders = [ModelFamily.Bert, ModelFamily.Roberta, ModelFamily.Albert, ModelFamily.Electra];
    private static readonly ModelFamily[] Gpt = [ModelFamily.Gpt];

    public static IReadOnlyList<ObjectiveDescriptor> All { get; } =
    [
        new(ObjectiveKind.Mlm, [StageKind.Pretrain], ["kind", "mask_prob", "sentence_task"], Text,
            "masked LM (BERT, RoBERTa, ALBERT); sentence_task nsp or sop adds BERT's or ALBERT's sentence-pair task",
            Encoders, "an encoder family; use clm"),
        new(ObjectiveKind.Clm, [StageKind.Pretrain], ["kind"], Text, "next-token prediction (GPT)", Gpt, "the gpt family"),
        new(ObjectiveKind.Rtd, [StageKind.Pretrain], ["kind", "mask_prob", "discriminator_weight"], Text,
            "ELECTRA's replaced-token detection with an MLM generator", [ModelFamily.Electra], "the electra family"),
        new(ObjectiveKind.Plm, [StageKind.Pretrain], ["kind", "k"], Text, "XLNet's permutation LM", [ModelFamily.Xlnet], "the xlnet family"),
        new(ObjectiveKind.SpanCorruption, [StageKind.Pretrain], ["kind", "noise_density", "mean_span"], Text,
            "T5's span corruption", [ModelFamily.T5], "the t5 family"),
        new(ObjectiveKind.Classification, [StageKind.Finetune], ["kind", "task", "pooling"],
            o => ((ClassificationSpec)o).Task.Schema(), "a classifier head: one label per sequence, or one per token", Any, "any family"),
        new(ObjectiveKind.Sft, [StageKind.Sft], ["kind"], _ => RecordSchema.Sft, "next-token loss on the response only", Gpt, "the gpt family"),
        new(ObjectiveKind.Reward, [StageKind.Reward], ["kind"], _ => RecordSchema.Preference, "Bradley-Terry loss on chosen/rejected pairs", Gpt, "the gpt family"),
        new(ObjectiveKind.Dpo, [StageKind.Dpo], ["kind", "beta"], _ => RecordSchema.Preference, "direct preference optimisation against a frozen reference", Gpt, "the gpt family"),
        new(ObjectiveKind.Distill, [StageKind.Distill], ["kind", "temperature", "alpha", "mse", "max_param_ratio"],
            _ => RecordSchema.Text, "a student learns a label stage's soft labels (the records are the label stage's)", Any, "any family"),
    ];

    /// <summary>The descriptor of <paramref name="kind"/>.</summary>
    public static ObjectiveDescriptor Of(ObjectiveKind kind) => All.First(d => d.Kind == kind);

    /// <summary>The objectives a stage kind accepts, in table order.</summary>
    public static IReadOnlyList<ObjectiveKind> For(StageKind kind) => All.Where(d => d.StageKinds.Contains(kind)).Select(d => d.Kind).ToList();
}
