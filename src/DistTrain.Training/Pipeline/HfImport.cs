using DistTrain.Contracts.Specs;
using DistTrain.Models;
using DistTrain.Models.Interop;
using TorchSharp;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// <c>inputs.init: "hf:DIR"</c>: initialises a stage's model from a Hugging Face checkpoint directory under the data root,
/// after checking that the spec's model and tokenizer are the checkpoint's (docs/interop.md). Any family registered in
/// <see cref="HfFamilies"/> for the stage's <see cref="ModelFamilies.HfModelTypes"/> entry is read the same way.
/// </summary>
public static class HfImport
{
    /// <summary>Loads the checkpoint into model (a pre-training model of the same architecture, or a head on its backbone).</summary>
    /// <exception cref="InvalidDataException">the spec contradicts config.json (the message names the spec field), or the tokenizer is not the checkpoint's.</exception>
    public static void Into(torch.nn.Module model, JobSpec job, StageSpec stage, string? dataRoot)
    {
        var (dir, family, where) = Checkpoint(stage, dataRoot);
        var theirs = family.ReadConfig(dir, TokenizerSpec.SpecialIds);
        // T5 is an encoder-decoder without one backbone: the text-to-text classifier is the whole model plus label words.
        ModelConfig ours = model switch
        {
            T5Model t5 => t5.Config,
            T5TextClassifier t5Classifier => t5Classifier.Model.Config,
            _ => ModelBuilder.BackboneOf(model).Config,
        };

        var contradictions = new List<string>();
        void Same<T>(string field, T spec, T checkpoint, string? source = null)
        {
            if (!EqualityComparer<T>.Default.Equals(spec, checkpoint))
                contradictions.Add($"{field} is {spec}, config.json's {source ?? family.Fields[field]} is {checkpoint}");
        }
        Same("model.layers", ours.Layers, theirs.Layers);
        Same("model.hidden", ours.HiddenSize, theirs.HiddenSize);
        Same("model.heads", ours.Heads, theirs.Heads);
        Same("model.ffn", ours.IntermediateSize, theirs.IntermediateSize);
        if (family.Fields.ContainsKey("model.max_len"))   // relative-position families (T5, XLNet) have no position table to agree with
            Same("model.max_len", ours.MaxPositions, theirs.MaxPositions,
                theirs.PositionOffset == 0 ? null : $"{family.Fields["model.max_len"]} − {theirs.PositionOffset} (positions start at padding_idx + 1)");
        Same("model.vocab_size", ours.VocabSize, theirs.VocabSize, $"{family.Fields["model.vocab_size"]} + {TokenizerSpec.SpecialIds} special ids");
        Same("model.gelu", Gelu(ours.Gelu), Gelu(theirs.Gelu), family.Fields.GetValueOrDefault("model.gelu", "activation"));
        if (family.Fields.ContainsKey("model.embedding_size")) Same("model.embedding_size", ours.EmbeddingWidth, theirs.EmbeddingWidth);
        // Not spec fields: Align copies them from config.json into the stage's config, so a difference here is a bug or an
        // edited checkpoint.
        Same("layer norm epsilon (not a spec field)", ours.LayerNormEps, theirs.LayerNormEps, "layer norm epsilon");
        Same("position offset (not a spec field)", ours.PositionOffset, theirs.PositionOffset, "pad_token_id + 1");
        Same("token types (not a spec field)", ours.TypeVocabSize, theirs.TypeVocabSize, "type_vocab_size");
        if (ours is T5Config oursT5 && theirs is T5Config theirsT5)
        {
            Same("relative buckets (not a spec field)", oursT5.RelativeBuckets, theirsT5.RelativeBuckets, "relative_attention_num_buckets");
            Same("relative max distance (not a spec field)", oursT5.RelativeMaxDistance, theirsT5.RelativeMaxDistance, "relative_attention_max_distance");
        }
        if (contradictions.Count > 0)
            throw new InvalidDataException($"{where}: the spec contradicts the checkpoint: {string.Join("; ", contradictions)}");
        CheckTokenizer(job, dataRoot!, dir, theirs.VocabSize - TokenizerSpec.SpecialIds, where);

        using var source = family.Create(dir, theirs);
        family.Import(source, dir, TokenizerSpec.SpecialIds);
        if (source.GetType() == model.GetType())
        {
            // Same class, other heads (BertForMaskedLM under an mlm+nsp stage): name what the checkpoint lacks.
            var have = source.state_dict();
            var need = model.state_dict();
            if (need.Count != have.Count || need.Keys.Any(k => !have.ContainsKey(k)))
                throw new InvalidDataException($"{where}: the checkpoint's model has tensors [{string.Join(", ", have.Keys.Except(need.Keys))}] and lacks [{string.Join(", ", need.Keys.Except(have.Keys))}] that this stage's {SpecNames.Of(stage.Objective!.Kind)} model has");
            // A classifier checkpoint of another label set (the shapes of its last layer differ).
            if (source is IClassifier theirsClassifier && model is IClassifier oursClassifier && theirsClassifier.Classes != oursClassifier.Classes)
                throw new InvalidDataException($"{where}: the checkpoint classifies {theirsClassifier.Classes} labels (config.json's id2label), this stage {oursClassifier.Classes} classes");
        }
        else if (!(source is T5Model && model is T5TextClassifier) && (model is not IHeadOnBackbone || source is IHeadOnBackbone))
            throw new InvalidDataException($"{where}: the checkpoint holds a {source.GetType().Name}; a {model.GetType().Name} can take all of a checkpoint of its own class, or a pre-training checkpoint's backbone under a head");
        ModelBuilder.Transfer(source, model);
        CarryPooler(source, model);
    }

    /// <summary>
    /// A pre-training checkpoint's pooler (BERT's bert.pooler, ALBERT's albert.pooler: dense + tanh on [CLS]) becomes the
    /// pooler of a [CLS] classifier's head, as transformers' *ForSequenceClassification.from_pretrained does; only the
    /// classifier layer then starts fresh.
    /// </summary>
    private static void CarryPooler(torch.nn.Module source, torch.nn.Module model)
    {
        if (source is not EncoderForPreTraining || model is not SequenceClassifier) return;
        var from = source.state_dict();
        var to = model.state_dict();
        using var _ = torch.no_grad();
        foreach (var p in new[] { "weight", "bias" })
            if (from.TryGetValue($"pair_head.pooler.{p}", out var pooler) && to.TryGetValue($"head.pooler.{p}", out var target) && target.shape.SequenceEqual(pooler.shape))
                target.copy_(pooler);
    }

    /// <summary>
    /// config with the fields a Hugging Face checkpoint fixes but a spec does not state (LayerNorm epsilon, RoBERTa's
    /// position offset, the number of token types), taken from the checkpoint at the root of stage's init lineage.
    /// Unchanged when the lineage does not start from a checkpoint or no data root is known.
    /// </summary>
    public static ModelConfig Align(ModelConfig config, JobSpec job, StageSpec stage, string? dataRoot)
    {
        var root = stage;
        for (int hops = 0; root.Inputs.HfInit is null && root.Inputs.Init is { } init && job.Stage(init) is { } up && hops < job.Stages.Count; hops++) root = up;
        if (root.Inputs.HfInit is null || dataRoot is null || !root.Model.SameShapeAs(stage.Model)) return config;
        var (dir, family, _) = Checkpoint(root, dataRoot);
        var theirs = family.ReadConfig(dir, TokenizerSpec.SpecialIds);
        var aligned = config with { LayerNormEps = theirs.LayerNormEps, PositionOffset = theirs.PositionOffset, TypeVocabSize = theirs.TypeVocabSize };
        return aligned is T5Config t5 && theirs is T5Config fixedBy
            ? t5 with { RelativeBuckets = fixedBy.RelativeBuckets, RelativeMaxDistance = fixedBy.RelativeMaxDistance }
            : aligned;
    }

    /// <summary>The checkpoint directory of stage's hf: init, its family (which must be the stage's), and a prefix for messages.</summary>
    private static (string Dir, HfFamily Family, string Where) Checkpoint(StageSpec stage, string? dataRoot)
    {
        string relative = stage.Inputs.HfInit ?? throw new ArgumentException($"stage '{stage.Name}' has no hf: init", nameof(stage));
        string where = $"stage '{stage.Name}': inputs.init {InputsSpec.HfPrefix}{relative}";
        if (dataRoot is null) throw new InvalidOperationException($"{where} needs a data root (--data-root)");
        var dir = DataPaths.Resolve(dataRoot, relative, out var problem) ?? throw new InvalidDataException($"{where}: {problem}");
        if (!ModelFamilies.HfModelTypes.TryGetValue(stage.Model.Family, out var expected))
            throw new NotSupportedException($"{where}: Hugging Face import of family '{SpecNames.Of(stage.Model.Family)}' is not supported yet (see docs/interop.md)");
        var type = HfCheckpoint.ModelType(dir);
        if (type != expected)
            throw new InvalidDataException($"{where}: model.family is {SpecNames.Of(stage.Model.Family)}, config.json's model_type is {type} (a {SpecNames.Of(stage.Model.Family)} reads '{expected}')");
        return (dir, HfFamilies.For(type, Path.Combine(dir, "config.json")), where);
    }

    private static string Gelu(GeluKind kind) => SpecNames.Of(kind == GeluKind.Tanh ? GeluForm.Tanh : GeluForm.Exact);

    /// <summary>
    /// The checkpoint's tokenizer files (BPE vocab.json + merges.txt or tokenizer.json, WordPiece vocab.txt) must be the
    /// job's (<c>kind: files</c> at the same folder), or the job reads GPT-2's own vocabulary.
    /// </summary>
    private static void CheckTokenizer(JobSpec job, string dataRoot, string dir, int vocab, string where)
    {
        var t = job.TokenizerOrDefault;
        bool wordPiece = File.Exists(Path.Combine(dir, "vocab.txt"));
        bool hasFiles = File.Exists(Path.Combine(dir, "tokenizer.json")) || wordPiece
            || (File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt")));
        // A WordPiece vocabulary of GPT-2's size is still not GPT-2's.
        bool gpt2Vocabulary = vocab == TokenizerSpec.Gpt2Size - TokenizerSpec.SpecialIds && !wordPiece;
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

/// <summary>
/// The model-section fields a Hugging Face checkpoint's config.json determines, read by its family's reader in
/// <see cref="HfFamilies"/> (the same reading <see cref="HfImport.Into"/> checks the built model against). Given to
/// <see cref="JobSpecs.Load"/> where the data root is known, so a stage with <c>inputs.init: hf:DIR</c> may leave them out.
/// </summary>
/// <remarks>
/// Not determined by config.json, so written or left to the spec's defaults: <c>dropout</c> (0.1), <c>norm</c> (the family's
/// own: pre-LN for GPT-2 and T5, post-LN otherwise, which the importers require), <c>generator</c>, and <c>max_len</c> for the
/// relative-position families (T5, XLNet), which stays required. <c>gelu</c> is filled for the families whose config.json
/// names an activation DistTrain has a choice of (GPT-2, the BERT line); <c>embedding_size</c> for ALBERT and ELECTRA.
/// </remarks>
public sealed class HfCheckpointModels : ICheckpointModelReader
{
    /// <summary>The one instance (the reader keeps no state).</summary>
    public static HfCheckpointModels Instance { get; } = new();

    private HfCheckpointModels() { }

    /// <inheritdoc/>
    public IReadOnlyList<CheckpointField> Read(string dir)
    {
        var type = HfCheckpoint.ModelType(dir);
        var family = HfFamilies.For(type, Path.Combine(dir, "config.json"));
        var ours = ModelFamilies.HfModelTypes.Single(kv => kv.Value == type).Key;
        var c = family.ReadConfig(dir, TokenizerSpec.SpecialIds);
        static string S(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var fields = new List<CheckpointField>
        {
            new("family", SpecNames.Of(ours), $"model_type {type}'s family"),
            new("layers", S(c.Layers), family.Fields["model.layers"]),
            new("hidden", S(c.HiddenSize), family.Fields["model.hidden"]),
            new("heads", S(c.Heads), family.Fields["model.heads"]),
            new("ffn", S(c.IntermediateSize), family.Fields["model.ffn"]),
        };
        if (family.Fields.TryGetValue("model.max_len", out var positions))
            fields.Add(new("max_len", S(c.MaxPositions), c.PositionOffset == 0 ? positions : $"{positions} − {c.PositionOffset} (positions start at padding_idx + 1)"));
        fields.Add(new("vocab_size", S(c.VocabSize), $"{family.Fields["model.vocab_size"]} + {TokenizerSpec.SpecialIds} special ids"));
        if (family.Fields.TryGetValue("model.gelu", out var activation))
            fields.Add(new("gelu", SpecNames.Of(c.Gelu == GeluKind.Tanh ? GeluForm.Tanh : GeluForm.Exact), activation));
        if (ours is ModelFamily.Albert or ModelFamily.Electra)
            fields.Add(new("embedding_size", S(c.EmbeddingWidth), family.Fields["model.embedding_size"]));
        return fields;
    }
}
