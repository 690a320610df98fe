using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// One Hugging Face model_type's reader and writer. Each family keeps its code in a static class (HfGpt2, HfBert, …);
/// this record is how the pipeline, the exporter and the CLI reach it without knowing which family it is.
/// </summary>
/// <param name="ModelType">config.json's model_type.</param>
/// <param name="ReadConfig">checkpoint directory, special rows → the DistTrain config it describes (VocabSize includes the special rows).</param>
/// <param name="Create">checkpoint directory, its config → the module the checkpoint holds (its heads included), ready for Import.</param>
/// <param name="Import">copies the directory's tensors into that module; a missing or unmatched tensor is an error naming it.</param>
/// <param name="Write">writes a trained module (config.json + model.safetensors with the reference names) and, for a
/// classifier, its class names; refuses modules it has no layout for. Called through <see cref="Export"/>.</param>
/// <param name="Fields">spec field (model.layers, …) → the config.json field it must agree with, for error messages.</param>
public sealed record HfFamily(
    string ModelType,
    Func<string, int, ModelConfig> ReadConfig,
    Func<string, ModelConfig, nn.Module> Create,
    Action<nn.Module, string, int> Import,
    Action<nn.Module, string, int, IReadOnlyDictionary<string, string>?, IReadOnlyList<string>?> Write,
    IReadOnlyDictionary<string, string> Fields)
{
    /// <summary>Writes model into dir in this family's layout (see <see cref="Write"/>).</summary>
    /// <param name="classes">A sequence classifier's class names in the order of its logits (config.json's id2label);
    /// null: LABEL_i. Not used by models without classes.</param>
    public void Export(nn.Module model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata, IReadOnlyList<string>? classes = null) =>
        Write(model, dir, specialRows, metadata, classes);
}

/// <summary>The registry of Hugging Face families, keyed by config.json's model_type; one line per family.</summary>
public static class HfFamilies
{
    private static readonly Dictionary<string, string> BertFields = new()
    {
        ["model.layers"] = "num_hidden_layers", ["model.hidden"] = "hidden_size", ["model.heads"] = "num_attention_heads",
        ["model.ffn"] = "intermediate_size", ["model.max_len"] = "max_position_embeddings", ["model.vocab_size"] = "vocab_size",
        ["model.gelu"] = "hidden_act", ["model.embedding_size"] = "embedding_size",
    };

    /// <summary>Every family with a reader and writer.</summary>
    public static IReadOnlyDictionary<string, HfFamily> ByModelType { get; } = new[]
    {
        new HfFamily(HfGpt2.ModelType, HfGpt2.ReadConfig, (_, c) => new GptLanguageModel((GptConfig)c),
            (m, d, s) => HfGpt2.Import(As<GptLanguageModel>(m, HfGpt2.ModelType), d, s),
            // A GPT sequence classifier (fine-tuned or distilled) is GPT2ForSequenceClassification.
            (m, d, s, meta, classes) =>
            {
                if (m is SequenceClassifier classifier) HfGpt2Classifier.Export(classifier, HfEncoderLayout.ClassNames(classifier.Classes, classes), d, s, meta);
                else HfGpt2.Export(As<GptLanguageModel>(m, HfGpt2.ModelType), d, s, meta);
            },
            new Dictionary<string, string>
            {
                ["model.layers"] = "n_layer", ["model.hidden"] = "n_embd", ["model.heads"] = "n_head", ["model.ffn"] = "n_inner",
                ["model.max_len"] = "n_positions", ["model.vocab_size"] = "vocab_size", ["model.gelu"] = "activation_function",
            }),
        new HfFamily(HfBert.BertType, HfBert.ReadConfig, HfBert.Create, HfBert.Import, HfBert.Export, BertFields),
        new HfFamily(HfBert.RobertaType, HfBert.ReadConfig, HfBert.Create, HfBert.Import, HfBert.Export, BertFields),
        // ELECTRA, T5 and XLNet write no classifiers (their writers refuse them), so they have no class names to write.
        new HfFamily(HfElectra.ModelType, HfElectra.ReadConfig, (_, c) => new ElectraDiscriminator((ElectraConfig)c), HfElectra.Import, (m, d, s, meta, _) => HfElectra.Export(m, d, s, meta), BertFields),
        new HfFamily(HfAlbert.ModelType, HfAlbert.ReadConfig, HfEncoderLayout.CreateFor, HfAlbert.Import, HfAlbert.Export, BertFields),
        // Relative positions: no max_len in config.json (the spec's max_len only bounds DistTrain's sequences).
        new HfFamily(HfT5.ModelType, (d, s) => HfT5.ReadConfig(d, s), (_, c) => new T5Model((T5Config)c),
            (m, d, s) => HfT5.Import(As<T5Model>(m, HfT5.ModelType), d, s),
            (m, d, s, meta, _) => HfT5.Export(As<T5Model>(m, HfT5.ModelType), d, s, meta),
            new Dictionary<string, string>
            {
                ["model.layers"] = "num_layers", ["model.hidden"] = "d_model", ["model.heads"] = "num_heads", ["model.ffn"] = "d_ff",
                ["model.vocab_size"] = "vocab_size",
            }),
        new HfFamily(HfXLNet.ModelType, HfXLNet.ReadConfig, (_, c) => new XLNetLanguageModel((XLNetConfig)c),
            (m, d, s) => HfXLNet.Import(As<XLNetLanguageModel>(m, HfXLNet.ModelType), d, s),
            (m, d, s, meta, _) => HfXLNet.Export(As<XLNetLanguageModel>(m, HfXLNet.ModelType), d, s, meta),
            new Dictionary<string, string>
            {
                ["model.layers"] = "n_layer", ["model.hidden"] = "d_model", ["model.heads"] = "n_head", ["model.ffn"] = "d_inner",
                ["model.vocab_size"] = "vocab_size",
            }),
    }.ToDictionary(f => f.ModelType, StringComparer.Ordinal);

    /// <summary>The family a checkpoint directory's config.json names.</summary>
    /// <exception cref="InvalidDataException">no config.json, no model_type, or a model_type without a reader (the message says which are supported).</exception>
    public static HfFamily Of(string dir) => For(HfCheckpoint.ModelType(dir), Path.Combine(dir, "config.json"));

    /// <summary>The family of a model_type; where names the source in the error.</summary>
    public static HfFamily For(string modelType, string where) =>
        ByModelType.TryGetValue(modelType, out var family) ? family
        : throw new InvalidDataException(HfCheckpoint.NotSupported.Contains(modelType)
            ? $"{where}: Hugging Face import/export of family '{modelType}' is not supported yet (supported: {string.Join(", ", ByModelType.Keys)})."
            : $"{where}: model_type '{modelType}' is not a family DistTrain reads (supported: {string.Join(", ", ByModelType.Keys)}).");

    private static T As<T>(nn.Module m, string type) where T : nn.Module =>
        m as T ?? throw new NotSupportedException($"a {m.GetType().Name} has no Hugging Face '{type}' layout (expected {typeof(T).Name}).");
}

/// <summary>What every Hugging Face checkpoint reader shares: which family a config.json describes, and its typed fields.</summary>
public static class HfCheckpoint
{
    /// <summary>model_type values of issue #14's families that DistTrain cannot import or export yet.</summary>
    public static readonly IReadOnlySet<string> NotSupported = new HashSet<string>();

    /// <summary>config.json's model_type, read from a checkpoint directory.</summary>
    public static string ModelType(string dir)
    {
        var path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: no config.json; a Hugging Face checkpoint directory needs one.");
        return JsonNode.Parse(File.ReadAllText(path))!["model_type"] is JsonValue v ? (string)v! : throw new InvalidDataException($"{path}: model_type is missing.");
    }

    /// <summary>Throws unless json's model_type is expected; a known but unsupported family gets a "not supported yet" message.</summary>
    public static void RequireType(JsonObject json, string path, string expected)
    {
        var type = json["model_type"] is JsonValue v ? (string)v! : null;
        if (type == expected) return;
        throw new InvalidDataException(type is not null && NotSupported.Contains(type)
            ? $"{path}: Hugging Face import/export of family '{type}' is not supported yet (supported: {string.Join(", ", HfFamilies.ByModelType.Keys)})."
            : $"{path}: model_type is '{type ?? "(missing)"}', expected '{expected}'.");
    }

    /// <summary>config.json of a checkpoint directory, and its path for messages.</summary>
    public static (JsonObject Json, string Path) ReadJson(string dir)
    {
        var path = System.IO.Path.Combine(dir, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: no config.json; a Hugging Face checkpoint directory needs one.");
        return (JsonNode.Parse(File.ReadAllText(path))!.AsObject(), path);
    }

    /// <summary>A required integer field.</summary>
    public static int Int(JsonObject json, string path, string field) =>
        json[field] is JsonValue v ? (int)v : throw new InvalidDataException($"{path}: {field} is missing.");

    /// <summary>An optional integer field.</summary>
    public static int? OptionalInt(JsonObject json, string field) => json[field] is JsonValue v ? (int)v : null;

    /// <summary>An optional number field with its reference default.</summary>
    public static double Real(JsonObject json, string field, double fallback) => json[field] is JsonValue v ? (double)v : fallback;

    /// <summary>An optional string field with its reference default.</summary>
    public static string Str(JsonObject json, string field, string fallback) => json[field] is JsonValue v ? (string)v! : fallback;

    /// <summary>hidden_act → GELU form: exact "gelu", or the tanh approximation ("gelu_new", "gelu_pytorch_tanh"); anything else is refused.</summary>
    public static GeluKind Gelu(JsonObject json, string path, string field, string fallback) => Str(json, field, fallback) switch
    {
        "gelu" => GeluKind.Exact,
        "gelu_new" or "gelu_pytorch_tanh" => GeluKind.Tanh,
        var other => throw new InvalidDataException($"{path}: {field} '{other}' is not supported (gelu, gelu_new or gelu_pytorch_tanh)."),
    };
}
