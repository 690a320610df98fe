namespace DistTrain.Data.Files;

/// <summary>What one record of a user's data holds; each schema names its fields (see <see cref="DataSchemas.Fields"/>).</summary>
public enum DataSchema
{
    /// <summary>"text": a document (pre-training).</summary>
    Text,

    /// <summary>"text" + "label" (a string or an integer).</summary>
    Classification,

    /// <summary>"tokens" (words) + "tags" (one tag per word), e.g. POS or NER.</summary>
    TokenTags,

    /// <summary>"prompt" + "response" (supervised fine-tuning).</summary>
    Sft,

    /// <summary>"prompt" (optional) + "chosen" + "rejected" (reward models, DPO).</summary>
    Preference,
}

/// <summary>How a schema's fields look in a file.</summary>
public enum FieldKind
{
    /// <summary>A string.</summary>
    Text,

    /// <summary>A string or an integer; integers are kept as <see cref="long"/>.</summary>
    Label,

    /// <summary>An array of strings (kept as <c>string[]</c>).</summary>
    Words,
}

/// <summary>One field of a schema.</summary>
/// <param name="Optional">A missing or null optional field reads as the empty string.</param>
public sealed record SchemaField(string Name, FieldKind Kind, bool Optional = false);

/// <summary>The fields of each <see cref="DataSchema"/>.</summary>
public static class DataSchemas
{
    /// <summary>The schema's fields in the order records list them.</summary>
    public static IReadOnlyList<SchemaField> Fields(DataSchema schema) => schema switch
    {
        DataSchema.Text => [new("text", FieldKind.Text)],
        DataSchema.Classification => [new("text", FieldKind.Text), new("label", FieldKind.Label)],
        DataSchema.TokenTags => [new("tokens", FieldKind.Words), new("tags", FieldKind.Words)],
        DataSchema.Sft => [new("prompt", FieldKind.Text), new("response", FieldKind.Text)],
        DataSchema.Preference => [new("prompt", FieldKind.Text, Optional: true), new("chosen", FieldKind.Text), new("rejected", FieldKind.Text)],
        _ => throw new ArgumentOutOfRangeException(nameof(schema)),
    };

    /// <summary>The column a field is read from: the field map's entry, else the field's own name.</summary>
    public static string Column(string field, IReadOnlyDictionary<string, string>? fieldMap) =>
        fieldMap is not null && fieldMap.TryGetValue(field, out var column) ? column : field;

    /// <summary>Lower-case name as written in specs and manifests ("text", "classification", "token_tags", "sft", "preference").</summary>
    public static string Name(DataSchema schema) => schema switch
    {
        DataSchema.TokenTags => "token_tags",
        _ => schema.ToString().ToLowerInvariant(),
    };
}

/// <summary>One record of a data file: the schema's fields by name (string, long for integer labels, string[] for words).</summary>
/// <param name="Source">Where it came from, for messages: "file:line" (txt, jsonl), "file:item N" (a .json array) or "file:row N" (parquet).</param>
public sealed record DataRecord(string Source, IReadOnlyDictionary<string, object> Fields)
{
    /// <summary>A text field.</summary>
    public string Text(string field) => (string)Fields[field];

    /// <summary>A words field.</summary>
    public string[] Words(string field) => (string[])Fields[field];

    /// <summary>A label as text (integers in invariant form).</summary>
    public string Label(string field = "label") => Fields[field] switch
    {
        long n => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
        var v => (string)v,
    };
}

/// <summary>Bad user data: the message starts with "relative/path:line: " (or ":row N: ") where there is a location.</summary>
public sealed class DataFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The files of one dataset by split. <see cref="Presplit"/> is false when all files are training data to be split by seed.</summary>
public sealed record DataFileSet(IReadOnlyList<string> Train, IReadOnlyList<string> Validation, IReadOnlyList<string> Test, bool Presplit)
{
    /// <summary>The folder paths are shown and keyed relative to (the data root); the files' common folder when empty.</summary>
    public string Root { get; init; } = "";

    /// <summary>Every file, train first.</summary>
    public IEnumerable<string> All => Train.Concat(Validation).Concat(Test);

    /// <summary><see cref="Root"/>, or the files' deepest common folder.</summary>
    public string DisplayRoot
    {
        get
        {
            if (Root.Length > 0) return Root;
            var dirs = All.Select(f => Path.GetDirectoryName(Path.GetFullPath(f)) ?? "/").ToList();
            if (dirs.Count == 0) return Directory.GetCurrentDirectory();
            var common = dirs[0];
            foreach (var d in dirs.Skip(1))
                while (!(d == common || d.StartsWith(common.TrimEnd('/') + "/", StringComparison.Ordinal))) common = Path.GetDirectoryName(common) ?? "/";
            return common;
        }
    }
}
