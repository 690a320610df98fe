using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace DistTrain.Contracts.Specs;

/// <summary>One model-section field a Hugging Face config.json determines.</summary>
/// <param name="Key">The model-section key (<c>layers</c>, <c>family</c>, …).</param>
/// <param name="Value">Its value as the spec writes it (<c>4</c>, <c>gpt</c>, <c>tanh</c>).</param>
/// <param name="Source">The config.json field(s) it comes from, for messages (<c>n_layer</c>, <c>vocab_size + 38 special ids</c>).</param>
public sealed record CheckpointField(string Key, string Value, string Source);

/// <summary>Reads the model-section fields a checkpoint directory's config.json determines.</summary>
/// <remarks>
/// Implemented where the readers of each model_type live (DistTrain.Training's HfCheckpointModels, over
/// DistTrain.Models.Interop.HfFamilies), and given to <see cref="JobSpecs.Load"/> by the processes that hold the data
/// root at submission: <c>disttrain run</c>/<c>data prepare</c>/<c>export</c> and the cluster's job manager.
/// </remarks>
public interface ICheckpointModelReader
{
    /// <summary>The fields config.json in dir determines, <c>family</c> first.</summary>
    /// <exception cref="Exception">the directory is not a checkpoint of a supported family (the message says why).</exception>
    IReadOnlyList<CheckpointField> Read(string dir);
}

/// <summary>
/// <c>inputs.init: "hf:DIR"</c> fills the stage's model section from the checkpoint's config.json (docs/interop.md): the
/// fields it determines that the stage (or <c>defaults.model</c>) does not write are added to the spec text, and every
/// written one must agree with it. The filled text is the job's effective spec: it is what is stored, echoed by GetJob and
/// sent to workers, so every process parses the same model without reading config.json again.
/// </summary>
public static class HfModelSections
{
    /// <summary>
    /// A filled spec, the fields read per stage index, the model keys each of those stages wrote itself (the rest come
    /// from config.json or <c>defaults.model</c>), and errors (at <c>stages[i].inputs.init</c>) for checkpoints that could not be read.
    /// </summary>
    public sealed record Filled(string Yaml, IReadOnlyDictionary<int, IReadOnlyList<CheckpointField>> Read,
        IReadOnlyDictionary<int, IReadOnlySet<string>> Own, IReadOnlyList<SpecError> Errors);

    /// <summary>
    /// Fills the model section of every stage with an hf: init from its config.json. Text without such stages, or whose
    /// stages already write every field, is returned unchanged (comments included); otherwise the YAML is re-emitted
    /// (comments are not kept). Never throws on bad input: text the parser would refuse is returned as it is.
    /// </summary>
    public static Filled Fill(string yaml, string dataRoot, ICheckpointModelReader reader)
    {
        var read = new Dictionary<int, IReadOnlyList<CheckpointField>>();
        var own = new Dictionary<int, IReadOnlySet<string>>();
        var errors = new List<SpecError>();
        YamlStream stream;
        try
        {
            stream = new YamlStream();
            stream.Load(new StringReader(yaml));
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException or ArgumentException or FormatException or IndexOutOfRangeException)
        {
            return new Filled(yaml, read, own, errors);   // the parser reports it
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode top
            || !top.Children.TryGetValue(new YamlScalarNode("stages"), out var stagesNode) || stagesNode is not YamlSequenceNode stages)
            return new Filled(yaml, read, own, errors);
        var defaults = Mapping(top, "defaults") is { } d ? Mapping(d, "model") : null;
        // A declared tokenizer fixes vocab_size (SpecParser: its size, known for a files tokenizer only once its files are
        // read), so it is left to the tokenizer; the importer checks the two agree when it builds the stage.
        bool tokenizerSizes = top.Children.ContainsKey(new YamlScalarNode("tokenizer"));

        bool changed = false;
        for (int i = 0; i < stages.Children.Count; i++)
        {
            if (stages.Children[i] is not YamlMappingNode stage || Mapping(stage, "inputs") is not { } inputs
                || Scalar(inputs, "init") is not { } init || !init.StartsWith(InputsSpec.HfPrefix, StringComparison.Ordinal))
                continue;
            string relative = init[InputsSpec.HfPrefix.Length..];
            string where = $"stages[{i}].inputs.init";
            // An unsafe or missing path is the validator's to report, with the same words.
            if (DataPaths.Resolve(dataRoot, relative, out var unsafePath) is not { } dir)
            {
                errors.Add(new SpecError(where, unsafePath!));
                continue;
            }
            if (DataPaths.Missing(dataRoot, relative) is { } missing)
            {
                errors.Add(new SpecError(where, missing));
                continue;
            }
            IReadOnlyList<CheckpointField> fields;
            try { fields = reader.Read(dir); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                errors.Add(new SpecError(where, $"{InputsSpec.HfPrefix}{relative}: {e.Message}"));
                continue;
            }
            read[i] = fields;
            var model = Mapping(stage, "model");
            if (model is null)
            {
                if (stage.Children.ContainsKey(new YamlScalarNode("model"))) continue;   // not a mapping: the parser says so
                model = new YamlMappingNode { Style = YamlDotNet.Core.Events.MappingStyle.Flow };
                stage.Children.Add(new YamlScalarNode("model"), model);
            }
            own[i] = model.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "").ToHashSet(StringComparer.Ordinal);
            foreach (var f in fields)
            {
                var key = new YamlScalarNode(f.Key);
                if (model.Children.ContainsKey(key) || (defaults?.Children.ContainsKey(key) ?? false) || (tokenizerSizes && f.Key == "vocab_size")) continue;
                model.Children.Add(key, new YamlScalarNode(f.Value));
                changed = true;
            }
        }
        if (!changed) return new Filled(yaml, read, own, errors);
        var text = new StringBuilder();
        using (var writer = new StringWriter(text)) stream.Save(writer, assignAnchors: false);
        return new Filled(text.ToString(), read, own, errors);
    }

    /// <summary>
    /// Each written model field of a stage with an hf: init that contradicts its config.json, named by the key that
    /// writes it (the stage's model section, else defaults.model).
    /// </summary>
    public static IReadOnlyList<SpecError> Contradictions(JobSpec spec, Filled filled)
    {
        var errors = new List<SpecError>();
        var stages = spec.Stages;
        foreach (var (i, fields) in filled.Read)
        {
            if (i >= stages.Count) continue;
            var stage = stages[i];
            foreach (var f in fields)
            {
                var ours = Written(stage.Model, f.Key);
                if (ours is null || ours == f.Value) continue;
                // A stage whose model is not a mapping wrote nothing of its own that could be read; the parser reports it.
                bool stageWrote = !filled.Own.TryGetValue(i, out var keys) || keys.Contains(f.Key);
                string path = stageWrote ? $"stages[{i}].model.{f.Key}" : $"defaults.model.{f.Key}";
                errors.Add(new SpecError(path,
                    $"is {ours}, but config.json's {f.Source} is {f.Value} (stage '{stage.Name}' starts from {InputsSpec.HfPrefix}{stage.Inputs.HfInit}; leave the field out to take config.json's)"));
            }
        }
        return errors;
    }

    /// <summary>A model-section field as the spec holds it, in the form <see cref="CheckpointField.Value"/> uses; null for fields a spec leaves to its family.</summary>
    private static string? Written(ModelSpec m, string key) => key switch
    {
        "family" => SpecNames.Of(m.Family),
        "layers" => m.Layers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "hidden" => m.Hidden.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "heads" => m.Heads.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "ffn" => m.Ffn.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "max_len" => m.MaxLen.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "vocab_size" => m.VocabSize == 0 ? null : m.VocabSize.ToString(System.Globalization.CultureInfo.InvariantCulture),   // 0: a files tokenizer's, read later
        "embedding_size" => m.EmbeddingWidth.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "gelu" => m.Gelu is { } g ? SpecNames.Of(g) : null,
        _ => throw new ArgumentException($"'{key}' is not a model-section field a checkpoint determines", nameof(key)),
    };

    private static YamlMappingNode? Mapping(YamlMappingNode parent, string key) =>
        parent.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node as YamlMappingNode : null;

    private static string? Scalar(YamlMappingNode parent, string key) =>
        parent.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode s ? s.Value : null;
}
