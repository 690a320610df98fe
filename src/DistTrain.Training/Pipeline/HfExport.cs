using System.Text;
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

    /// <summary>Writes model (a trained model of stage) into dir with its family's writer; see docs/interop.md.</summary>
    /// <exception cref="NotSupportedException">the family has no Hugging Face layout, or the model is not one its writer knows (a classifier).</exception>
    public static void Write(torch.nn.Module model, JobSpec job, StageSpec stage, StageArtifacts artifacts, string dir)
    {
        if (!ModelFamilies.HfModelTypes.TryGetValue(stage.Model.Family, out var type))
            throw new NotSupportedException($"stage '{stage.Name}': Hugging Face export of family '{SpecNames.Of(stage.Model.Family)}' is not supported yet (see docs/interop.md)");
        var metadata = new Dictionary<string, string> { ["disttrain_stage"] = stage.Name };
        // A classifier's config.json names its classes (id2label): the ones it trained with (classes.json).
        var classes = model is SequenceClassifier ? StageInputs.ClassesOfTrained(job, stage, artifacts) : null;
        try
        {
            HfFamilies.For(type, $"stage '{stage.Name}'").Export(model, dir, TokenizerSpec.SpecialIds, metadata, classes);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"stage '{stage.Name}': {e.Message}", e);
        }
        catch (ArgumentException e) when (classes is not null)
        {
            throw new InvalidDataException($"stage '{stage.Name}': {artifacts.Classes}: {e.Message}", e);
        }
        // The tokenizer's own files (vocab.json + merges.txt, tokenizer.json, or WordPiece's vocab.txt + tokenizer_config.json); GPT-2's vocabulary saves none.
        if (Directory.Exists(artifacts.Tokenizer))
            foreach (var file in Directory.EnumerateFiles(artifacts.Tokenizer).Where(f => Path.GetFileName(f) != Tokenizers.FileName))
                File.Copy(file, Path.Combine(dir, Path.GetFileName(file)), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "README.md"), Card(stage, artifacts, dir));
    }

    /// <summary>The model card: what the stage trained on, for how long, and the metrics it ended with (from metrics.json).</summary>
    private static string Card(StageSpec stage, StageArtifacts artifacts, string dir)
    {
        var card = new StringBuilder();
        card.AppendLine($"# {artifacts.JobId} / {stage.Name}").AppendLine();
        var architecture = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))?["architectures"]?[0]?.ToString() ?? "?";
        card.AppendLine($"A Hugging Face-layout model (`{architecture}`) trained with DistTrain.").AppendLine();
        if (architecture == HfGpt2Classifier.Architecture)
            card.AppendLine($"DistTrain's special ids follow the tokenizer's (see `{HfGpt2Classifier.SpecialIdsFrom}` in config.json): inputs are cls + text + sep.").AppendLine();
        card.AppendLine($"- stage kind: {SpecNames.Of(stage.Kind)}, objective: {(stage.Objective is { } o ? SpecNames.Of(o.Kind) : "none")}");
        card.AppendLine($"- data: {Describe(stage.Data.Source)} ({SpecNames.Of(stage.Data.Split)} split, sequence length {stage.Data.SeqLen})");
        card.AppendLine($"- tokenizer: {(new[] { "vocab.json", "tokenizer.json", "vocab.txt" }.Any(f => File.Exists(Path.Combine(artifacts.Tokenizer, f))) ? "the files in this folder" : "GPT-2's own (no files written; load `gpt2`'s tokenizer)")}");
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
