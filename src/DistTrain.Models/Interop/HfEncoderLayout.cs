using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// One DistTrain tensor and the Hugging Face tensor(s) it is: one name, or several concatenated along dim 0 (the fused
/// qkv is query|key|value, each an nn.Linear (out, in), so no transpose anywhere in the encoder families).
/// </summary>
public sealed record HfKey(string Ours, params string[] Hf)
{
    /// <summary>Indexed by token id along dim 0 (the token table, the MLM bias): DistTrain's special rows come first.</summary>
    public bool Vocab { get; init; }
}

/// <summary>
/// The key-map machinery the encoder families (BERT, RoBERTa, ELECTRA, ALBERT) share: the post-LN block's names, the
/// special-row rule, and the generic import (every name checked, shapes checked) and export (the exact inverse).
/// </summary>
/// <remarks>
/// DistTrain's ids 0..specialRows−1 are its own special tokens, laid out as DistTrain.Data's SpecialTokens (pad 0, bos 1,
/// eos 2, cls 3, sep 4, mask 5); checkpoint row r becomes DistTrain row specialRows + r.
/// </remarks>
public static class HfEncoderLayout
{
    /// <summary>DistTrain's special ids as DistTrain.Data's SpecialTokens numbers them (this project cannot see it; a test checks they agree).</summary>
    public const int Pad = 0, Bos = 1, Eos = 2, Cls = 3, Sep = 4, Mask = 5;

    /// <summary>DistTrain's special ids and the checkpoint tokens whose rows they copy on import (bos/cls = [CLS] or &lt;s&gt;, eos/sep = [SEP] or &lt;/s&gt;).</summary>
    private static readonly (int Row, string[] Tokens, string? ConfigId)[] SpecialSources =
    [
        (Pad, ["[PAD]", "<pad>"], "pad_token_id"),
        (Bos, ["[CLS]", "<s>"], "bos_token_id"),
        (Eos, ["[SEP]", "</s>"], "eos_token_id"),
        (Cls, ["[CLS]", "<s>"], "bos_token_id"),
        (Sep, ["[SEP]", "</s>"], "eos_token_id"),
        (Mask, ["[MASK]", "<mask>"], null),
    ];

    /// <summary>Buffers that some checkpoints save next to the weights; not weights, so skipped on import.</summary>
    private static readonly string[] KnownBuffers = ["embeddings.position_ids", "embeddings.token_type_ids"];

    /// <summary>The post-LN block of BERT, RoBERTa and ELECTRA: <c>{hf}encoder.layer.{i}.</c> ↔ <c>{ours}layers.{i}.</c>.</summary>
    public static IEnumerable<HfKey> BertLayer(string ours, string hf)
    {
        foreach (var p in new[] { "weight", "bias" })
        {
            yield return new(ours + "attention.qkv." + p, hf + "attention.self.query." + p, hf + "attention.self.key." + p, hf + "attention.self.value." + p);
            yield return new(ours + "attention.proj." + p, hf + "attention.output.dense." + p);
            yield return new(ours + "attention_norm." + p, hf + "attention.output.LayerNorm." + p);
            yield return new(ours + "fc_in." + p, hf + "intermediate.dense." + p);
            yield return new(ours + "fc_out." + p, hf + "output.dense." + p);
            yield return new(ours + "mlp_norm." + p, hf + "output.LayerNorm." + p);
        }
    }

    /// <summary>BERT-style embeddings (word, position, token_type, LayerNorm) under <c>{hf}embeddings.</c>.</summary>
    public static IEnumerable<HfKey> Embeddings(string ours, string hf, bool segments)
    {
        yield return new(ours + TokenTable, hf + "embeddings.word_embeddings.weight") { Vocab = true };
        yield return new(ours + "embeddings.position.weight", hf + "embeddings.position_embeddings.weight");
        if (segments) yield return new(ours + "embeddings.segment.weight", hf + "embeddings.token_type_embeddings.weight");
        yield return new(ours + "embeddings.norm.weight", hf + "embeddings.LayerNorm.weight");
        yield return new(ours + "embeddings.norm.bias", hf + "embeddings.LayerNorm.bias");
    }

    /// <summary>A Linear or LayerNorm's weight and bias.</summary>
    public static IEnumerable<HfKey> Pair(string ours, string hf) => [new(ours + ".weight", hf + ".weight"), new(ours + ".bias", hf + ".bias")];

    /// <summary>The token table's name inside a backbone.</summary>
    public const string TokenTable = "embeddings.token.weight";

    /// <summary>
    /// Copies the directory's tensors into model through map. tied lists (name, of): tensors a checkpoint may also store
    /// as copies of another (a tied decoder); they are accepted only when equal to it.
    /// </summary>
    /// <exception cref="InvalidDataException">missing, unmatched or uncovered names (all listed), a wrong shape, or a tied copy that differs.</exception>
    public static void Import(nn.Module model, string dir, int specialRows, string architecture, IReadOnlyList<HfKey> map, IReadOnlyList<(string Name, string Of)> tied)
    {
        var hf = Safetensors.ReadDirectory(dir);
        foreach (var name in hf.Keys.Where(n => KnownBuffers.Any(n.EndsWith)).ToList()) hf.Remove(name);
        // Checkpoints converted from TensorFlow (the hub's bert-base-uncased among them) name LayerNorm's parameters
        // gamma and beta; transformers renames them on load, and so does this.
        foreach (var name in hf.Keys.Where(n => n.EndsWith("LayerNorm.gamma", StringComparison.Ordinal) || n.EndsWith("LayerNorm.beta", StringComparison.Ordinal)).ToList())
        {
            var renamed = name.EndsWith(".gamma", StringComparison.Ordinal) ? name[..^".gamma".Length] + ".weight" : name[..^".beta".Length] + ".bias";
            if (!hf.Remove(name, out var t) || !hf.TryAdd(renamed, t))
                throw new InvalidDataException($"{dir}: both {name} and {renamed} are present.");
        }
        foreach (var (name, of) in tied)
            if (hf.Remove(name, out var copy) && !(hf.TryGetValue(of, out var original) && copy.shape.SequenceEqual(original.shape) && copy.eq(original).all().item<bool>()))
                throw new InvalidDataException($"{dir}: {name} differs from {of}; DistTrain ties them, so an untied checkpoint is not supported.");

        var state = model.state_dict();
        var wanted = map.SelectMany(k => k.Hf).ToHashSet(StringComparer.Ordinal);
        var missing = map.SelectMany(k => k.Hf).Where(n => !hf.ContainsKey(n)).ToList();
        var unmatched = hf.Keys.Where(n => !wanted.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        var uncovered = state.Keys.Except(map.Select(k => k.Ours)).ToList();
        if (missing.Count + unmatched.Count + uncovered.Count > 0)
            throw new InvalidDataException($"{dir}: the checkpoint does not match a {architecture} of this shape."
                + (missing.Count > 0 ? $" Missing: {string.Join(", ", missing)}." : "")
                + (unmatched.Count > 0 ? $" Unmatched: {string.Join(", ", unmatched)}." : "")
                + (uncovered.Count > 0 ? $" Model tensors with no source: {string.Join(", ", uncovered)}." : ""));

        var rows = SpecialRowSources(dir);
        using var _ = no_grad();
        foreach (var key in map)
        {
            using var scope = NewDisposeScope();
            var source = key.Hf.Length == 1 ? hf[key.Hf[0]] : cat(key.Hf.Select(n => hf[n]).ToArray(), 0);
            var target = state[key.Ours];
            if (key.Vocab)
            {
                long v = source.shape[0];
                if (target.shape[0] != specialRows + v || !target.shape.Skip(1).SequenceEqual(source.shape.Skip(1)))
                    throw new InvalidDataException($"{dir}: {key.Hf[0]} is ({string.Join(", ", source.shape)}); the model expects ({string.Join(", ", target.shape.Select((d, i) => i == 0 ? d - specialRows : d))}).");
                target.narrow(0, specialRows, v).copy_(source);
                var mean = source.mean([0]);                                            // (E) or () for a bias
                for (int row = 0; row < specialRows; row++)
                    target[row].copy_(rows.TryGetValue(row, out int r) && r >= 0 && r < v ? source[r] : mean);
                continue;
            }
            if (!target.shape.SequenceEqual(source.shape))
                throw new InvalidDataException($"{dir}: {string.Join(" | ", key.Hf)} is ({string.Join(", ", source.shape)}); the model expects ({string.Join(", ", target.shape)}).");
            target.copy_(source);
        }
    }

    /// <summary>The inverse of <see cref="Import"/>: model's tensors under the reference names (special rows dropped, qkv split) into dir/model.safetensors.</summary>
    public static void Export(nn.Module model, string dir, int specialRows, IReadOnlyList<HfKey> map, IReadOnlyDictionary<string, string>? metadata)
    {
        Directory.CreateDirectory(dir);
        var state = model.state_dict();
        using var _ = no_grad();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var key in map)
        {
            var t = state[key.Ours];
            if (key.Vocab) t = t.narrow(0, specialRows, t.shape[0] - specialRows);
            long part = t.shape[0] / key.Hf.Length;
            for (int i = 0; i < key.Hf.Length; i++)
                tensors.Add(KeyValuePair.Create(key.Hf[i], key.Hf.Length == 1 ? t : t.narrow(0, i * part, part).contiguous()));
        }
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" });
    }

    /// <summary>True when a checkpoint's tensors end in a sequence classifier (BERT/ALBERT classifier.weight, RoBERTa classifier.out_proj).</summary>
    public static bool IsClassifier(IReadOnlySet<string> names) => names.Contains("classifier.weight") || names.Contains("classifier.out_proj.weight");

    /// <summary>
    /// The module an encoder checkpoint holds: a [CLS]-pooler <see cref="SequenceClassifier"/> of config.json's label count
    /// (id2label, else num_labels, else 2) for a classifier, else the family's pre-training model.
    /// </summary>
    public static nn.Module CreateFor(string dir, ModelConfig config)
    {
        if (!IsClassifier(Safetensors.Names(dir))) return ModelFactory.Create(config);
        var (json, _) = HfCheckpoint.ReadJson(dir);
        int labels = json["id2label"] is JsonObject id2label ? id2label.Count : HfCheckpoint.OptionalInt(json, "num_labels") ?? 2;
        return new SequenceClassifier(new Transformer(config), labels, PoolingMode.First);
    }

    /// <summary>The backbone config of a pre-training model or a classifier on a backbone.</summary>
    public static ModelConfig BackboneConfig(nn.Module model) => model switch
    {
        IHasBackbone b => b.Backbone.Config,
        SequenceClassifier { Backbone: Transformer t } when model.state_dict().ContainsKey("head.pooler.weight") => t.Config,
        SequenceClassifier => throw new NotSupportedException("only a classifier that pools [CLS] through a dense+tanh pooler (pooling: first) has the Hugging Face *ForSequenceClassification layout."),
        _ => throw new NotSupportedException($"a {model.GetType().Name} has no Hugging Face encoder layout (a pre-training model or a sequence classifier is needed)."),
    };

    /// <summary>A classifier's id2label/label2id: its class names, else LABEL_i (transformers' own placeholders).</summary>
    /// <exception cref="ArgumentException">names that are not one per class.</exception>
    public static void AddLabels(JsonObject config, nn.Module model, IReadOnlyList<string>? names)
    {
        if (model is not SequenceClassifier classifier) return;
        SetLabels(config, ClassNames(classifier.Classes, names));
    }

    /// <summary>names when they are one per class; LABEL_i when null.</summary>
    /// <exception cref="ArgumentException">names that are not one per class.</exception>
    public static IReadOnlyList<string> ClassNames(int classes, IReadOnlyList<string>? names) =>
        names is null ? Enumerable.Range(0, classes).Select(i => $"LABEL_{i}").ToList()
        : names.Count == classes ? names
        : throw new ArgumentException($"{names.Count} class names for a classifier of {classes} classes.", nameof(names));

    /// <summary>Writes id2label and label2id for names into config.</summary>
    public static void SetLabels(JsonObject config, IReadOnlyList<string> names)
    {
        config["id2label"] = new JsonObject(names.Select((n, i) => KeyValuePair.Create(i.ToString(), (JsonNode?)n)));
        config["label2id"] = new JsonObject(names.Select((n, i) => KeyValuePair.Create(n, (JsonNode?)i)));
    }

    /// <summary>
    /// The config.json fields BERT, RoBERTa, ALBERT and ELECTRA write alike (BertConfig's schema, which the others
    /// extend); each family adds its own (embedding_size, groups, tie_word_embeddings, pad_token_id).
    /// </summary>
    public static JsonObject EncoderConfig(ModelConfig c, int specialRows, string modelType, string architecture, int maxPositionEmbeddings) => new()
    {
        ["architectures"] = new JsonArray(architecture),
        ["model_type"] = modelType,
        ["vocab_size"] = c.VocabSize - specialRows,
        ["hidden_size"] = c.HiddenSize,
        ["num_hidden_layers"] = c.Layers,
        ["num_attention_heads"] = c.Heads,
        ["intermediate_size"] = c.IntermediateSize,
        ["hidden_act"] = c.Gelu == GeluKind.Tanh ? "gelu_new" : "gelu",
        ["max_position_embeddings"] = maxPositionEmbeddings,
        ["type_vocab_size"] = c.TypeVocabSize,
        ["layer_norm_eps"] = c.LayerNormEps,
        ["hidden_dropout_prob"] = c.Dropout,
        ["attention_probs_dropout_prob"] = c.AttentionDropout,
        ["initializer_range"] = c.InitStd,
        ["position_embedding_type"] = "absolute",
        ["torch_dtype"] = "float32",
    };

    /// <summary>Writes config.json.</summary>
    public static void WriteConfig(string dir, JsonObject config) =>
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new() { WriteIndented = true }) + "\n");

    /// <summary>
    /// DistTrain special row → checkpoint row (for the token table and the MLM bias alike): the token's id in the directory's vocab.txt, vocab.json or tokenizer.json
    /// when one is there, else config.json's *_token_id; rows with neither (and the sentinels) get the mean row.
    /// </summary>
    private static Dictionary<int, int> SpecialRowSources(string dir)
    {
        var (config, _) = HfCheckpoint.ReadJson(dir);
        var vocab = Vocabulary(dir);
        var rows = new Dictionary<int, int>();
        foreach (var (row, tokens, configId) in SpecialSources)
        {
            int? id = tokens.Select(t => vocab.TryGetValue(t, out int i) ? i : (int?)null).FirstOrDefault(i => i is not null)
                ?? (configId is null ? null : HfCheckpoint.OptionalInt(config, configId));
            if (id is int found) rows[row] = found;
        }
        return rows;
    }

    /// <summary>token → id from vocab.txt (WordPiece: one token a line), vocab.json (BPE) or tokenizer.json (model.vocab and added_tokens).</summary>
    private static Dictionary<string, int> Vocabulary(string dir)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var txt = Path.Combine(dir, "vocab.txt");
        var json = Path.Combine(dir, "vocab.json");
        var full = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(txt))
        {
            int i = 0;
            foreach (var line in File.ReadLines(txt)) vocab.TryAdd(line.TrimEnd('\r'), i++);
        }
        else if (File.Exists(json))
        {
            foreach (var (token, id) in JsonNode.Parse(File.ReadAllText(json))!.AsObject()) vocab[token] = (int)id!;
        }
        else if (File.Exists(full) && JsonNode.Parse(File.ReadAllText(full)) is JsonObject t)
        {
            if (t["model"]?["vocab"] is JsonObject v) foreach (var (token, id) in v) vocab[token] = (int)id!;
            if (t["added_tokens"] is JsonArray added) foreach (var a in added) vocab[(string)a!["content"]!] = (int)a["id"]!;
        }
        return vocab;
    }
}
