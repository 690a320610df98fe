using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face GPT-2 checkpoints (GPT2LMHeadModel: config.json + safetensors) in and out of <see cref="GptLanguageModel"/>.
/// </summary>
/// <remarks>
/// The two compute the same function once GELU is the tanh form (<see cref="GeluKind.Tanh"/>): pre-LN blocks, fused qkv
/// in q|k|v order split into heads the same way, 1/sqrt(head dim) scaling, a final LayerNorm and logits tied to the
/// token table. GPT-2's Conv1D stores weights (in, out), nn.Linear (out, in), so every projection is transposed.
/// DistTrain's vocabulary starts with <c>specialRows</c> ids of its own; HF row r is DistTrain row specialRows + r.
/// See docs/interop.md.
/// </remarks>
public static class HfGpt2
{
    /// <summary>config.json's model_type for this family.</summary>
    public const string ModelType = "gpt2";

    private static readonly string[] KnownBuffers = [".attn.bias", ".attn.masked_bias"];

    /// <summary>The DistTrain config a checkpoint directory describes (VocabSize includes the special rows).</summary>
    /// <exception cref="InvalidDataException">config.json is not GPT-2's, or asks for math this model does not do; the message names the field.</exception>
    public static GptConfig ReadConfig(string dir, int specialRows)
    {
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if (json["architectures"] is JsonArray archs && archs.Any(a => (string?)a == HfGpt2Classifier.Architecture))
            throw new InvalidDataException($"{path}: a {HfGpt2Classifier.Architecture} checkpoint is not a GPT-2 language model; load it with HfGpt2Classifier (a stage cannot start from one yet).");
        return ReadConfig(json, path, specialRows);
    }

    /// <summary><see cref="ReadConfig(string, int)"/> on a parsed config.json (path names it in errors).</summary>
    internal static GptConfig ReadConfig(JsonObject json, string path, int specialRows)
    {
        HfCheckpoint.RequireType(json, path, ModelType);
        int hidden = Int(json, path, "n_embd");
        var gelu = Str(json, "activation_function", "gelu_new") switch
        {
            "gelu_new" or "gelu_pytorch_tanh" => GeluKind.Tanh,
            "gelu" => GeluKind.Exact,
            var other => throw new InvalidDataException($"{path}: activation_function '{other}' is not supported (gelu_new, gelu_pytorch_tanh or gelu)."),
        };
        if (!Bool(json, "scale_attn_weights", true)) throw new InvalidDataException($"{path}: scale_attn_weights false is not supported.");
        if (Bool(json, "scale_attn_by_inverse_layer_idx", false)) throw new InvalidDataException($"{path}: scale_attn_by_inverse_layer_idx true is not supported.");
        if (!Bool(json, "tie_word_embeddings", true)) throw new InvalidDataException($"{path}: tie_word_embeddings false is not supported (DistTrain's GPT ties its output to the token table).");
        return new GptConfig
        {
            VocabSize = specialRows + Int(json, path, "vocab_size"),
            MaxPositions = Int(json, path, "n_positions"),
            HiddenSize = hidden,
            Layers = Int(json, path, "n_layer"),
            Heads = Int(json, path, "n_head"),
            IntermediateSize = json["n_inner"] is JsonValue inner ? (int)inner : 4 * hidden,
            LayerNormEps = json["layer_norm_epsilon"] is JsonValue eps ? (double)eps : 1e-5,
            Dropout = json["resid_pdrop"] is JsonValue drop ? (double)drop : 0.1,
            AttentionDropout = json["attn_pdrop"] is JsonValue attn ? (double)attn : 0.1,
            InitStd = json["initializer_range"] is JsonValue std ? (double)std : 0.02,
            Gelu = gelu,
        };
    }

    /// <summary>
    /// Copies a checkpoint's tensors into model (built from <see cref="ReadConfig"/>). The special rows are set from the
    /// checkpoint's eos row (bos and eos; GPT-2's &lt;|endoftext|&gt; plays both parts) and the mean row (all others).
    /// </summary>
    /// <exception cref="InvalidDataException">a tensor is missing, unmatched or of the wrong shape; the message lists the names.</exception>
    public static void Import(GptLanguageModel model, string dir, int specialRows, int bosId = 1, int eosId = 2)
    {
        var hf = ReadTensors(dir);
        if (hf.Remove("lm_head.weight", out var head) && !(hf.TryGetValue("wte.weight", out var wte) && head.shape.SequenceEqual(wte.shape) && head.eq(wte).all().item<bool>()))
            throw new InvalidDataException($"{dir}: lm_head.weight differs from wte.weight; an untied output layer is not supported.");
        LoadBackbone(model.Backbone, hf, dir, specialRows, bosId, eosId, specialRowsAt: null);
    }

    /// <summary>A checkpoint's tensors by GPT2Model name: the "transformer." prefix and the causal-mask buffers removed.</summary>
    internal static Dictionary<string, Tensor> ReadTensors(string dir)
    {
        var hf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in Safetensors.ReadDirectory(dir))
        {
            if (KnownBuffers.Any(name.EndsWith)) continue;  // causal-mask buffers older checkpoints saved; not weights
            hf[name.StartsWith("transformer.", StringComparison.Ordinal) ? name["transformer.".Length..] : name] = t;
        }
        return hf;
    }

    /// <summary>
    /// Copies the GPT2Model tensors of hf (every one must be consumed; <see cref="ReadTensors"/>) into backbone.
    /// specialRowsAt: null for a reference vocabulary (the special rows are made from the eos and mean rows); otherwise
    /// the HF row where DistTrain's own special rows were appended by <see cref="BackboneTensors"/>, which restores them.
    /// </summary>
    internal static void LoadBackbone(Backbone backbone, Dictionary<string, Tensor> hf, string dir, int specialRows, int bosId, int eosId, long? specialRowsAt)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        var state = backbone.state_dict();
        var map = KeyMap(backbone.Config.Layers);
        var missing = map.Where(m => !hf.ContainsKey(m.Hf)).Select(m => m.Hf).ToList();
        var unmatched = hf.Keys.Except(map.Select(m => m.Hf)).ToList();
        var uncovered = state.Keys.Except(map.Select(m => m.Ours)).ToList();
        if (missing.Count + unmatched.Count + uncovered.Count > 0)
            throw new InvalidDataException($"{dir}: the checkpoint does not match a GPT-2 of this shape."
                + (missing.Count > 0 ? $" Missing: {string.Join(", ", missing)}." : "")
                + (unmatched.Count > 0 ? $" Unmatched: {string.Join(", ", unmatched)}." : "")
                + (uncovered.Count > 0 ? $" Model tensors with no source: {string.Join(", ", uncovered)}." : ""));

        using var _ = no_grad();
        foreach (var (ours, name, transpose) in map)
        {
            var source = transpose ? hf[name].t() : hf[name];
            var target = state[ours];
            if (ours == TokenKey)
            {
                long v = specialRowsAt ?? source.shape[0];
                if (target.shape[0] != specialRows + v || target.shape[1] != source.shape[1] || source.shape[0] != v + (specialRowsAt is null ? 0 : specialRows))
                    throw new InvalidDataException($"{dir}: wte.weight is ({source.shape[0]}, {source.shape[1]}); the model expects ({target.shape[0] - (specialRowsAt is null ? specialRows : 0)}, {target.shape[1]}).");
                target.narrow(0, specialRows, v).copy_(source.narrow(0, 0, v));
                if (specialRowsAt is not null)
                {
                    target.narrow(0, 0, specialRows).copy_(source.narrow(0, v, specialRows));
                    continue;
                }
                var mean = source.mean([0]);                                                  // (H)
                int eos = config["eos_token_id"] is JsonValue e ? (int)e : -1;
                var endOfText = eos >= 0 && eos < v ? source[eos] : mean;                    // (H)
                for (int row = 0; row < specialRows; row++)
                    target[row].copy_(row == bosId || row == eosId ? endOfText : mean);
                continue;
            }
            if (!target.shape.SequenceEqual(source.shape))
                throw new InvalidDataException($"{dir}: {name} is ({string.Join(", ", hf[name].shape)}); the model expects ({string.Join(", ", transpose ? target.shape.Reverse() : target.shape)}).");
            target.copy_(source);
        }
    }

    /// <summary>Writes config.json and model.safetensors (GPT2LMHeadModel names, the special rows dropped) into dir.</summary>
    public static void Export(GptLanguageModel model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var c = model.Backbone.Config;
        Directory.CreateDirectory(dir);
        using var _ = no_grad();
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), BackboneTensors(model.Backbone, specialRows, appendSpecialRows: false),
            new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" });
        var config = Config(c, c.VocabSize - specialRows, "GPT2LMHeadModel");
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// The backbone's tensors under "transformer." + GPT2Model names (Conv1D weights transposed). The special rows are
    /// dropped, or, with appendSpecialRows, moved after the tokenizer's rows so that they survive the export.
    /// </summary>
    internal static List<KeyValuePair<string, Tensor>> BackboneTensors(Backbone backbone, int specialRows, bool appendSpecialRows)
    {
        var c = backbone.Config;
        if (c is not GptConfig || c.ShareLayers || c.EmbeddingWidth != c.HiddenSize || c.Norm != NormPlacement.Pre)
            throw new InvalidOperationException("only an unshared, unfactorised pre-LN GPT has a GPT-2 layout.");
        var state = backbone.state_dict();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (ours, name, transpose) in KeyMap(c.Layers))
        {
            var t = state[ours];
            if (ours == TokenKey)
            {
                var own = t.narrow(0, specialRows, t.shape[0] - specialRows);                // (V, H)
                t = appendSpecialRows ? cat([own, t.narrow(0, 0, specialRows)], 0) : own;    // (V [+ specials], H)
            }
            tensors.Add(KeyValuePair.Create("transformer." + name, transpose ? t.t().contiguous() : t));
        }
        return tensors;
    }

    /// <summary>config.json for a GPT-2 of c's shape with vocab rows in its table.</summary>
    internal static JsonObject Config(ModelConfig c, int vocab, string architecture)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["model_type"] = ModelType,
            ["vocab_size"] = vocab,
            ["n_positions"] = c.MaxPositions,
            ["n_ctx"] = c.MaxPositions,
            ["n_embd"] = c.HiddenSize,
            ["n_layer"] = c.Layers,
            ["n_head"] = c.Heads,
            ["n_inner"] = c.IntermediateSize,
            ["activation_function"] = c.Gelu == GeluKind.Tanh ? "gelu_new" : "gelu",
            ["layer_norm_epsilon"] = c.LayerNormEps,
            ["resid_pdrop"] = c.Dropout,
            ["embd_pdrop"] = c.Dropout,
            ["attn_pdrop"] = c.AttentionDropout,
            ["initializer_range"] = c.InitStd,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = "float32",
        };
        // GPT-2's own vocabulary ends with <|endoftext|>, its bos and eos.
        if (vocab == 50257) { config["bos_token_id"] = 50256; config["eos_token_id"] = 50256; }
        return config;
    }

    private const string TokenKey = "embeddings.token.weight";

    /// <summary>DistTrain backbone name ↔ GPT2Model name (no "transformer." prefix), and whether the weight is a transposed Conv1D.</summary>
    private static List<(string Ours, string Hf, bool Transpose)> KeyMap(int layers)
    {
        var map = new List<(string, string, bool)>
        {
            (TokenKey, "wte.weight", false),
            ("embeddings.position.weight", "wpe.weight", false),
        };
        for (int i = 0; i < layers; i++)
        {
            string o = $"layers.{i}.", h = $"h.{i}.";
            map.Add((o + "attention_norm.weight", h + "ln_1.weight", false));
            map.Add((o + "attention_norm.bias", h + "ln_1.bias", false));
            map.Add((o + "attention.qkv.weight", h + "attn.c_attn.weight", true));
            map.Add((o + "attention.qkv.bias", h + "attn.c_attn.bias", false));
            map.Add((o + "attention.proj.weight", h + "attn.c_proj.weight", true));
            map.Add((o + "attention.proj.bias", h + "attn.c_proj.bias", false));
            map.Add((o + "mlp_norm.weight", h + "ln_2.weight", false));
            map.Add((o + "mlp_norm.bias", h + "ln_2.bias", false));
            map.Add((o + "fc_in.weight", h + "mlp.c_fc.weight", true));
            map.Add((o + "fc_in.bias", h + "mlp.c_fc.bias", false));
            map.Add((o + "fc_out.weight", h + "mlp.c_proj.weight", true));
            map.Add((o + "fc_out.bias", h + "mlp.c_proj.bias", false));
        }
        map.Add(("final_norm.weight", "ln_f.weight", false));
        map.Add(("final_norm.bias", "ln_f.bias", false));
        return map;
    }

    private static int Int(JsonObject json, string path, string field) =>
        json[field] is JsonValue v ? (int)v : throw new InvalidDataException($"{path}: {field} is missing.");

    private static string Str(JsonObject json, string field, string fallback) => json[field] is JsonValue v ? (string)v! : fallback;

    private static bool Bool(JsonObject json, string field, bool fallback) => json[field] is JsonValue v ? (bool)v : fallback;
}
