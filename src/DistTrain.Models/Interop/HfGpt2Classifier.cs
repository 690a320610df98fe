using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face GPT2ForSequenceClassification checkpoints in and out of a <see cref="SequenceClassifier"/> on a GPT
/// backbone: <c>transformer.*</c> as <see cref="HfGpt2"/> writes it, plus <c>score.weight</c> (C, H) with no bias.
/// </summary>
/// <remarks>
/// The reference scores the hidden state of the last non-pad token (the largest position whose id is not
/// pad_token_id) with a bias-free linear layer. DistTrain's head computes the same function when it pools the last real
/// token (<see cref="PoolingMode.Last"/>, the largest position with attention mask 1), has no pooler and no bias: a stage
/// with <c>outputs.export: hf</c> builds its head that way. DistTrain's classifier inputs are <c>[cls] text [sep]</c> in
/// its own special ids, so unlike a language model export the special rows are kept: they follow the tokenizer's V rows
/// (HF ids V..V+37 are DistTrain ids 0..37, pad_token_id = V), and config.json's <c>disttrain_special_ids_from</c> says
/// so. See docs/interop.md.
/// </remarks>
public static class HfGpt2Classifier
{
    /// <summary>config.json's architectures entry.</summary>
    public const string Architecture = "GPT2ForSequenceClassification";

    /// <summary>config.json field: the HF id of DistTrain's special id 0 when the special rows were appended on export.</summary>
    public const string SpecialIdsFrom = "disttrain_special_ids_from";

    /// <summary>The backbone config, the class names (id2label order) and where the special rows are (null: not in the checkpoint).</summary>
    /// <exception cref="InvalidDataException">config.json is not a GPT-2 sequence classifier, or asks for other math; the message names the field.</exception>
    public static (GptConfig Config, IReadOnlyList<string> Labels, long? SpecialRowsAt) ReadConfig(string dir, int specialRows)
    {
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if (json["architectures"] is not JsonArray archs || !archs.Any(a => (string?)a == Architecture))
            throw new InvalidDataException($"{path}: architectures does not name {Architecture}.");
        var config = HfGpt2.ReadConfig(json, path, specialRows);
        long? at = json[SpecialIdsFrom] is JsonValue from ? (long)from : null;
        if (at is { } v && v != config.VocabSize - 2 * specialRows)
            throw new InvalidDataException($"{path}: {SpecialIdsFrom} is {v}; with vocab_size {config.VocabSize - specialRows} the appended special rows start at {config.VocabSize - 2 * specialRows}.");
        if (at is not null) config = config with { VocabSize = config.VocabSize - specialRows };
        int classes = json["num_labels"] is JsonValue n ? (int)n : json["id2label"] is JsonObject m ? m.Count
            : throw new InvalidDataException($"{path}: num_labels and id2label are missing.");
        var labels = Enumerable.Range(0, classes)
            .Select(i => json["id2label"]?[i.ToString()] is JsonValue l ? (string)l! : $"LABEL_{i}").ToArray();
        return (config, labels, at);
    }

    /// <summary>A classifier of the checkpoint's shape with its weights loaded (the reference's head: last-token pooling, no bias).</summary>
    public static SequenceClassifier Load(string dir, int specialRows, int bosId = 1, int eosId = 2)
    {
        var (config, labels, at) = ReadConfig(dir, specialRows);
        var model = new SequenceClassifier(new GptLanguageModel(config).Backbone, labels.Count, PoolingMode.Last, headBias: false);
        try
        {
            Import(model, dir, specialRows, at, bosId, eosId);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Copies a checkpoint into model; every tensor must match (the message lists the names of any that do not).</summary>
    public static void Import(SequenceClassifier model, string dir, int specialRows, long? specialRowsAt, int bosId = 1, int eosId = 2)
    {
        Require(model);
        var hf = HfGpt2.ReadTensors(dir);
        if (!hf.Remove("score.weight", out var score))
            throw new InvalidDataException($"{dir}: score.weight is missing." + (hf.ContainsKey("score.bias") ? " score.bias is unmatched." : ""));
        if (hf.Remove("score.bias"))
            throw new InvalidDataException($"{dir}: score.bias is unmatched: {Architecture}'s score has no bias.");
        HfGpt2.LoadBackbone(model.Backbone, hf, dir, specialRows, bosId, eosId, specialRowsAt);
        var weight = model.Head.Classifier.weight!;
        if (!weight.shape.SequenceEqual(score.shape))
            throw new InvalidDataException($"{dir}: score.weight is ({string.Join(", ", score.shape)}); the model expects ({string.Join(", ", weight.shape)}).");
        using var _ = no_grad();
        weight.copy_(score);
    }

    /// <summary>Writes config.json (with id2label from labels) and model.safetensors into dir.</summary>
    /// <exception cref="InvalidOperationException">the head computes another function than the reference's (the message says what differs).</exception>
    public static void Export(SequenceClassifier model, IReadOnlyList<string> labels, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Require(model);
        if (labels.Count != model.Classes) throw new ArgumentException($"{labels.Count} labels for {model.Classes} classes.", nameof(labels));
        var c = model.Backbone.Config;
        Directory.CreateDirectory(dir);
        using var _ = no_grad();
        var tensors = HfGpt2.BackboneTensors(model.Backbone, specialRows, appendSpecialRows: true);
        tensors.Add(KeyValuePair.Create("score.weight", (Tensor)model.Head.Classifier.weight!));
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors,
            new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" });

        int vocab = c.VocabSize - specialRows;
        var config = HfGpt2.Config(c, vocab + specialRows, Architecture);
        config[SpecialIdsFrom] = vocab;
        config["pad_token_id"] = vocab;              // DistTrain's pad (0): the reference pools the last id that is not it
        config["bos_token_id"] = vocab + BosId;
        config["eos_token_id"] = vocab + EosId;
        config["num_labels"] = labels.Count;
        config["problem_type"] = "single_label_classification";
        HfEncoderLayout.SetLabels(config, labels);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    /// <summary>DistTrain's bos and eos ids (SpecialTokens.Bos/Eos; this project does not reference DistTrain.Data).</summary>
    private const int BosId = 1, EosId = 2;

    /// <summary>Refuses a classifier whose function the reference cannot compute, saying what differs.</summary>
    private static void Require(SequenceClassifier model)
    {
        if (model.Backbone.Config is not GptConfig)
            throw new InvalidOperationException($"{Architecture} needs a GPT backbone, not {model.Backbone.Config.GetType().Name}.");
        if (model.Head.Pooling != PoolingMode.Last || model.Head.HasPooler)
            throw new InvalidOperationException($"{Architecture} scores the last non-pad token; this head pools {model.Head.Pooling} (declare pooling: last).");
        if (model.Head.Classifier.bias is not null)
            throw new InvalidOperationException($"{Architecture}'s score has no bias, and this head has one; a stage with outputs.export: hf builds its classifier without it.");
    }
}
