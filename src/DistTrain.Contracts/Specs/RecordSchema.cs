namespace DistTrain.Contracts.Specs;

/// <summary>The record layout a data file must have for a stage (docs/data.md); one per kind of task.</summary>
public enum RecordSchema
{
    /// <summary>Running text: <c>text</c>. Pre-training, and the corpus a label stage labels.</summary>
    Text,
    /// <summary><c>text</c> + <c>label</c> (a string or an integer). Sequence classification.</summary>
    Classification,
    /// <summary><c>tokens</c> + <c>tags</c>, two lists of strings of one length. Token classification.</summary>
    TokenTags,
    /// <summary><c>prompt</c> + <c>response</c>. Supervised fine-tuning; the loss covers the response only.</summary>
    Sft,
    /// <summary><c>prompt</c> (optional) + <c>chosen</c> + <c>rejected</c>. Reward models and DPO.</summary>
    Preference,
}

/// <summary>The fields of each <see cref="RecordSchema"/>: the one list the validator, the data layer and the docs read.</summary>
public static class RecordSchemas
{
    /// <summary>Fields every record must have.</summary>
    public static IReadOnlyList<string> Required(this RecordSchema schema) => schema switch
    {
        RecordSchema.Text => ["text"],
        RecordSchema.Classification => ["text", "label"],
        RecordSchema.TokenTags => ["tokens", "tags"],
        RecordSchema.Sft => ["prompt", "response"],
        RecordSchema.Preference => ["chosen", "rejected"],
        _ => [],
    };

    /// <summary>Fields a record may have.</summary>
    public static IReadOnlyList<string> Optional(this RecordSchema schema) => schema switch
    {
        RecordSchema.Preference => ["prompt"],
        _ => [],
    };

    /// <summary>Every field name of the schema, required first.</summary>
    public static IReadOnlyList<string> Fields(this RecordSchema schema) => [.. schema.Required(), .. schema.Optional()];
}
