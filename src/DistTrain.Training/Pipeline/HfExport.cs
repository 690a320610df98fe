using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Models.Interop;
using TorchSharp;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// A finished stage as a Hugging Face directory: config.json, model.safetensors (reference names), the tokenizer's files
/// and a model card. Written by <c>outputs.export: hf</c> at the stage's last step and by <c>disttrain export</c>.
/// </summary>
public static class HfExport
{
    /// <summary>The folder inside the stage folder that <c>outputs.export: hf</c> writes.</summary>
    public const string Folder = "hf";

    /// <summary>Writes model (a trained GPT language model of stage) into dir; see docs/interop.md.</summary>
    /// <exception cref="NotSupportedException">the model is not a GPT language model (the only family exported so far).</exception>
    public static void Write(torch.nn.Module model, StageSpec stage, StageArtifacts artifacts, string dir)
    {
        var metadata = new Dictionary<string, string> { ["disttrain_stage"] = stage.Name };
        string architecture;
        switch (model)
        {
            case GptLanguageModel gpt:
                HfGpt2.Export(gpt, dir, TokenizerSpec.SpecialIds, metadata);
                architecture = "A GPT-2-layout language model (`GPT2LMHeadModel`)";
                break;
            case SequenceClassifier classifier when classifier.Backbone.Config is GptConfig:
                // GPT2ForSequenceClassification; the class names come from the stage's classes.json.
                HfGpt2Classifier.Export(classifier, ClassesOf(artifacts, classifier.Classes), dir, TokenizerSpec.SpecialIds, metadata);
                architecture = $"A GPT-2-layout sequence classifier (`{HfGpt2Classifier.Architecture}`; DistTrain's special ids follow the tokenizer's, "
                    + $"see `{HfGpt2Classifier.SpecialIdsFrom}` in config.json: inputs are cls + text + sep)";
                break;
            default:
                throw new NotSupportedException($"stage '{stage.Name}': Hugging Face export of {model.GetType().Name} is not supported yet (GPT language models and GPT sequence classifiers only; see docs/interop.md)");
        }
        // The tokenizer's own files (vocab.json + merges.txt, or tokenizer.json); GPT-2's vocabulary saves none.
        if (Directory.Exists(artifacts.Tokenizer))
            foreach (var file in Directory.EnumerateFiles(artifacts.Tokenizer).Where(f => Path.GetFileName(f) != Tokenizers.FileName))
                File.Copy(file, Path.Combine(dir, Path.GetFileName(file)), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "README.md"), Card(stage, artifacts, architecture));
    }

    /// <summary>A classifier stage's class names, in the order of its logits.</summary>
    private static IReadOnlyList<string> ClassesOf(StageArtifacts artifacts, int count)
    {
        var names = File.Exists(artifacts.Classes) ? JsonSerializer.Deserialize<string[]>(File.ReadAllText(artifacts.Classes)) : null;
        if (names is null || names.Length != count)
            throw new InvalidDataException($"{artifacts.Classes}: the stage's class names are missing or do not match its {count} classes");
        return names;
    }

    /// <summary>The model card: what the stage trained on, for how long, and the metrics it ended with (from metrics.json).</summary>
    private static string Card(StageSpec stage, StageArtifacts artifacts, string architecture)
    {
        var card = new StringBuilder();
        card.AppendLine($"# {artifacts.JobId} / {stage.Name}").AppendLine();
        card.AppendLine($"{architecture} trained with DistTrain.").AppendLine();
        card.AppendLine($"- stage kind: {SpecNames.Of(stage.Kind)}, objective: {(stage.Objective is { } o ? SpecNames.Of(o.Kind) : "none")}");
        card.AppendLine($"- data: {Describe(stage.Data.Source)} ({SpecNames.Of(stage.Data.Split)} split, sequence length {stage.Data.SeqLen})");
        card.AppendLine($"- tokenizer: {(File.Exists(Path.Combine(artifacts.Tokenizer, "vocab.json")) || File.Exists(Path.Combine(artifacts.Tokenizer, "tokenizer.json")) ? "the files in this folder" : "GPT-2's own (no files written; load `gpt2`'s tokenizer)")}");
        if (File.Exists(artifacts.Metrics) && JsonNode.Parse(File.ReadAllText(artifacts.Metrics)) is JsonObject m)
        {
            card.AppendLine($"- steps: {m["steps"]}, workers: {m["world_size"]}").AppendLine();
            card.AppendLine("| metric | value |").AppendLine("|---|---|");
            foreach (var (key, value) in m["metrics"]?.AsObject() ?? [])
                card.AppendLine($"| {key} | {value} |");
        }
        return card.ToString();
    }

    private static string Describe(DataSource source) => source switch
    {
        BuiltinCorpus b => $"built-in corpus {SpecNames.Of(b.Name)}",
        CorpusFile f => $"`{f.Path}`",
        StageOutput s => $"the output of stage '{s.Stage}'",
        _ => source.ToString(),
    };
}
