namespace DistTrain.Contracts.Specs;

/// <summary>Everything the spec layer knows about one objective, in one place.</summary>
/// <param name="StageKinds">The stage kinds it trains in.</param>
/// <param name="Keys">YAML keys its mapping form accepts, <c>kind</c> included.</param>
/// <param name="Schema">The records it reads from a file of the user's (docs/data.md).</param>
/// <param name="Summary">One line for the reference docs.</param>
public sealed record ObjectiveDescriptor(
    ObjectiveKind Kind,
    IReadOnlyList<StageKind> StageKinds,
    IReadOnlyList<string> Keys,
    Func<ObjectiveSpec, RecordSchema> Schema,
    string Summary);

/// <summary>
/// The one table of objectives: the parser reads their keys, the validator their stage kinds and schemas, the data
/// layer their schemas, and <c>docs/spec-reference.md</c>'s objective table is checked against it by a test. A new
/// objective or data schema is a new row here (plus its training code).
/// </summary>
public static class ObjectiveDescriptors
{
    private static RecordSchema Text(ObjectiveSpec _) => RecordSchema.Text;

    public static IReadOnlyList<ObjectiveDescriptor> All { get; } =
    [
        new(ObjectiveKind.Mlm, [StageKind.Pretrain], ["kind", "mask_prob", "sentence_task"], Text,
            "masked LM (BERT, RoBERTa, ALBERT); sentence_task nsp or sop adds BERT's or ALBERT's sentence-pair task"),
        new(ObjectiveKind.Clm, [StageKind.Pretrain], ["kind"], Text, "next-token prediction (GPT)"),
        new(ObjectiveKind.Rtd, [StageKind.Pretrain], ["kind", "mask_prob", "discriminator_weight"], Text,
            "ELECTRA's replaced-token detection with an MLM generator"),
        new(ObjectiveKind.Plm, [StageKind.Pretrain], ["kind", "k"], Text, "XLNet's permutation LM"),
        new(ObjectiveKind.SpanCorruption, [StageKind.Pretrain], ["kind", "noise_density", "mean_span"], Text,
            "T5's span corruption"),
        new(ObjectiveKind.Classification, [StageKind.Finetune], ["kind", "task", "pooling"],
            o => ((ClassificationSpec)o).Task.Schema(), "a classifier head: one label per sequence, or one per token"),
        new(ObjectiveKind.Sft, [StageKind.Sft], ["kind"], _ => RecordSchema.Sft, "next-token loss on the response only"),
        new(ObjectiveKind.Reward, [StageKind.Reward], ["kind"], _ => RecordSchema.Preference, "Bradley-Terry loss on chosen/rejected pairs"),
        new(ObjectiveKind.Dpo, [StageKind.Dpo], ["kind", "beta"], _ => RecordSchema.Preference, "direct preference optimisation against a frozen reference"),
        new(ObjectiveKind.Distill, [StageKind.Distill], ["kind", "temperature", "alpha", "mse", "max_param_ratio"],
            _ => RecordSchema.Text, "a student learns a label stage's soft labels (the records are the label stage's)"),
    ];

    /// <summary>The descriptor of <paramref name="kind"/>.</summary>
    public static ObjectiveDescriptor Of(ObjectiveKind kind) => All.First(d => d.Kind == kind);

    /// <summary>The objectives a stage kind accepts, in table order.</summary>
    public static IReadOnlyList<ObjectiveKind> For(StageKind kind) => All.Where(d => d.StageKinds.Contains(kind)).Select(d => d.Kind).ToList();
}
