using DistTrain.Contracts.Specs;
using DistTrain.Models;
using DistTrain.Models.Interop;
using TorchSharp;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// <c>inputs.init: "hf:DIR"</c>: initialises a stage's model from a Hugging Face checkpoint directory under the data root,
/// after checking that the spec's model and tokenizer are the checkpoint's (docs/interop.md).
/// </summary>
public static class HfImport
{
    /// <summary>Loads the checkpoint into model (a language model or a head on a GPT backbone).</summary>
    /// <exception cref="InvalidDataException">the spec contradicts config.json (the message names the spec field), or the tokenizer is not the checkpoint's.</exception>
    public static void Into(torch.nn.Module model, JobSpec job, StageSpec stage, string? dataRoot)
    {
        string relative = stage.Inputs.HfInit ?? throw new ArgumentException($"stage '{stage.Name}' has no hf: init", nameof(stage));
        string where = $"stage '{stage.Name}': inputs.init {InputsSpec.HfPrefix}{relative}";
        if (dataRoot is null) throw new InvalidOperationException($"{where} needs a data root (--data-root)");
        var dir = DataPaths.Resolve(dataRoot, relative, out var problem) ?? throw new InvalidDataException($"{where}: {problem}");
        if (ModelBuilder.BackboneOf(model).Config is not GptConfig ours)
            throw new NotSupportedException($"{where}: Hugging Face import of family '{SpecNames.Of(stage.Model.Family)}' is not supported yet (gpt only; see docs/interop.md)");
        var theirs = HfGpt2.ReadConfig(dir, TokenizerSpec.SpecialIds);

        var contradictions = new List<string>();
        void Same<T>(string field, T spec, T checkpoint, string source)
        {
            if (!EqualityComparer<T>.Default.Equals(spec, checkpoint)) contradictions.Add($"{field} is {spec}, config.json's {source} is {checkpoint}");
        }
        Same("model.layers", ours.Layers, theirs.Layers, "n_layer");
        Same("model.hidden", ours.HiddenSize, theirs.HiddenSize, "n_embd");
        Same("model.heads", ours.Heads, theirs.Heads, "n_head");
        Same("model.ffn", ours.IntermediateSize, theirs.IntermediateSize, "n_inner");
        Same("model.max_len", ours.MaxPositions, theirs.MaxPositions, "n_positions");
        Same("model.vocab_size", ours.VocabSize, theirs.VocabSize, $"vocab_size + {TokenizerSpec.SpecialIds} special ids");
        Same("model.gelu", SpecNames.Of(ours.Gelu == GeluKind.Tanh ? GeluForm.Tanh : GeluForm.Exact),
            SpecNames.Of(theirs.Gelu == GeluKind.Tanh ? GeluForm.Tanh : GeluForm.Exact), "activation_function");
        Same("layer norm epsilon (not a spec field)", ours.LayerNormEps, theirs.LayerNormEps, "layer_norm_epsilon");
        if (contradictions.Count > 0)
            throw new InvalidDataException($"{where}: the spec contradicts the checkpoint: {string.Join("; ", contradictions)}");
        CheckTokenizer(job, dataRoot, dir, theirs.VocabSize - TokenizerSpec.SpecialIds, where);

        using var source = new GptLanguageModel(ours);
        HfGpt2.Import(source, dir, TokenizerSpec.SpecialIds);
        ModelBuilder.Transfer(source, model);
    }

    /// <summary>The checkpoint's tokenizer files must be the job's (<c>kind: files</c> at the same folder), or the job reads GPT-2's own vocabulary.</summary>
    private static void CheckTokenizer(JobSpec job, string dataRoot, string dir, int vocab, string where)
    {
        var t = job.TokenizerOrDefault;
        bool hasFiles = File.Exists(Path.Combine(dir, "tokenizer.json"))
            || (File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt")));
        bool gpt2Vocabulary = vocab == TokenizerSpec.Gpt2Size - TokenizerSpec.SpecialIds;
        static string Full(string p) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p));
        switch (t.Kind)
        {
            case TokenizerKind.Gpt2 when gpt2Vocabulary:
                return;
            case TokenizerKind.Files when t.Path is { } path && (!hasFiles || Full(Path.Combine(dataRoot, path)) == Full(dir)):
                return;   // without files in the checkpoint, model.vocab_size has already matched the tokenizer's size
            default:
                throw new InvalidDataException($"{where}: the job's tokenizer must be the checkpoint's: declare "
                    + (hasFiles ? $"tokenizer: {{kind: files, path: {Path.GetRelativePath(dataRoot, dir)}}}" : "a tokenizer of its vocabulary")
                    + (gpt2Vocabulary ? " or tokenizer: {kind: gpt2}" : "")
                    + $" (the job declares kind {SpecNames.Of(t.Kind)}{(t.Path is null ? "" : $", path {t.Path}")})");
        }
    }
}
