using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face T5 checkpoints (T5ForConditionalGeneration, T5 v1.0 layout: config.json + safetensors) in and out of
/// <see cref="T5Model"/>.
/// </summary>
/// <remarks>
/// The two compute the same function: unscaled attention without biases, one relative position bias table per stack
/// (the reference keeps it in the first block's self-attention, <c>relative_attention_bias</c>, and passes it on; the
/// decoder's cross-attention has none), the same bucketing of key − query, RMS LayerNorm (no mean, no bias), a ReLU MLP
/// without biases, and logits tied to the shared table with the hidden state scaled by d_model^−½. What DistTrain's T5
/// does not compute is refused with the reason: gated-GELU MLPs (T5 v1.1, flan-t5), an untied lm_head (which the
/// reference also uses without the rescale), d_kv·num_heads ≠ d_model, and a decoder depth other than the encoder's.
/// DistTrain's vocabulary starts with <c>specialRows</c> ids of its own, as for GPT-2 (docs/interop.md).
/// </remarks>
public static class HfT5
{
    /// <summary>config.json's model_type for this family.</summary>
    public const string ModelType = "t5";

    /// <summary>The DistTrain config a checkpoint directory describes (VocabSize includes the special rows; the decoder starts from DistTrain's pad).</summary>
    /// <exception cref="InvalidDataException">config.json is not T5's, or asks for math DistTrain's T5 does not do; the message names the field and the reason.</exception>
    public static T5Config ReadConfig(string dir, int specialRows, int padId = 0)
    {
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if ((json["model_type"] as JsonValue)?.GetValue<string>() != ModelType)
            throw new InvalidDataException($"{path}: model_type is '{json["model_type"]}', expected '{ModelType}'.");
        int hidden = Int(json, path, "d_model"), heads = Int(json, path, "num_heads"), layers = Int(json, path, "num_layers");
        string ffn = json["feed_forward_proj"] is JsonValue f ? (string)f! : "relu";
        if (ffn != "relu")
            throw new InvalidDataException($"{path}: feed_forward_proj '{ffn}' is not supported: DistTrain's t5 has T5 v1.0's ReLU MLP (wi, wo), not a gated one (wi_0, wi_1).");
        if (json["tie_word_embeddings"] is JsonValue tie && !(bool)tie)
            throw new InvalidDataException($"{path}: tie_word_embeddings false is not supported: DistTrain's t5 ties lm_head to the shared table and scales hidden states by d_model^-0.5, which an untied reference head does not.");
        if (json["d_kv"] is JsonValue kv && (int)kv * heads != hidden)
            throw new InvalidDataException($"{path}: d_kv {(int)kv} × num_heads {heads} ≠ d_model {hidden}: DistTrain's t5 splits d_model into the heads.");
        if (json["num_decoder_layers"] is JsonValue dec && (int)dec != layers)
            throw new InvalidDataException($"{path}: num_decoder_layers {(int)dec} ≠ num_layers {layers}: DistTrain's t5 has equal depths.");
        return new T5Config
        {
            VocabSize = specialRows + Int(json, path, "vocab_size"),
            HiddenSize = hidden,
            Layers = layers,
            Heads = heads,
            IntermediateSize = Int(json, path, "d_ff"),
            RelativeBuckets = json["relative_attention_num_buckets"] is JsonValue b ? (int)b : 32,
            RelativeMaxDistance = json["relative_attention_max_distance"] is JsonValue m ? (int)m : 128,
            LayerNormEps = json["layer_norm_epsilon"] is JsonValue eps ? (double)eps : 1e-6,
            Dropout = json["dropout_rate"] is JsonValue drop ? (double)drop : 0.1,
            AttentionDropout = json["dropout_rate"] is JsonValue attn ? (double)attn : 0.1,
            PadTokenId = padId,
            DecoderStartTokenId = padId,
        };
    }

    /// <summary>
    /// Copies a checkpoint's tensors into model (built from <see cref="ReadConfig"/>). DistTrain's pad and eos rows copy
    /// the checkpoint's pad_token_id and eos_token_id rows (so the decoder starts from the same embedding); every other
    /// special row is the mean row.
    /// </summary>
    /// <exception cref="InvalidDataException">a tensor is missing, unmatched or of the wrong shape; the message lists the names.</exception>
    public static void Import(T5Model model, string dir, int specialRows, int padId = 0, int eosId = 2)
    {
        var hf = new Dictionary<string, Tensor>(Safetensors.ReadDirectory(dir), StringComparer.Ordinal);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        // Copies of the shared table the reference may save: accepted only when they are the same table.
        foreach (var copy in new[] { "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight" })
            if (hf.Remove(copy, out var t) && !(hf.TryGetValue(SharedKey, out var shared) && t.shape.SequenceEqual(shared.shape) && t.eq(shared).all().item<bool>()))
                throw new InvalidDataException($"{dir}: {copy} differs from {SharedKey}; DistTrain's t5 has one tied table.");

        var state = model.state_dict();
        var map = KeyMap(model.Config.Layers);
        var missing = map.Where(m => !hf.ContainsKey(m.Hf)).Select(m => m.Hf).ToList();
        var unmatched = hf.Keys.Except(map.Select(m => m.Hf)).ToList();
        var uncovered = state.Keys.Except(map.Select(m => m.Ours)).ToList();
        if (missing.Count + unmatched.Count + uncovered.Count > 0)
            throw new InvalidDataException($"{dir}: the checkpoint does not match a T5 of this shape."
                + (missing.Count > 0 ? $" Missing: {string.Join(", ", missing)}." : "")
                + (unmatched.Count > 0 ? $" Unmatched: {string.Join(", ", unmatched)}." : "")
                + (uncovered.Count > 0 ? $" Model tensors with no source: {string.Join(", ", uncovered)}." : ""));

        using var _ = no_grad();
        foreach (var (ours, name) in map)
        {
            var source = hf[name];
            var target = state[ours];
            if (ours == SharedKey)
            {
                long v = source.shape[0];
                if (target.shape[0] != specialRows + v || target.shape[1] != source.shape[1])
                    throw new InvalidDataException($"{dir}: {SharedKey} is ({v}, {source.shape[1]}); the model expects ({target.shape[0] - specialRows}, {target.shape[1]}).");
                target.narrow(0, specialRows, v).copy_(source);
                var mean = source.mean([0]);                                                  // (H)
                Tensor Row(string field, int fallback) => (config[field] is JsonValue id ? (int)id : fallback) is var r && r >= 0 && r < v ? source[r] : mean;
                for (int row = 0; row < specialRows; row++)
                    target[row].copy_(row == padId ? Row("pad_token_id", 0) : row == eosId ? Row("eos_token_id", 1) : mean);
                continue;
            }
            if (!target.shape.SequenceEqual(source.shape))
                throw new InvalidDataException($"{dir}: {name} is ({string.Join(", ", source.shape)}); the model expects ({string.Join(", ", target.shape)}).");
            target.copy_(source);
        }
    }

    /// <summary>Writes config.json and model.safetensors (T5ForConditionalGeneration names, the special rows dropped) into dir.</summary>
    public static void Export(T5Model model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var c = model.Config;
        Directory.CreateDirectory(dir);
        var state = model.state_dict();
        using var _ = no_grad();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (ours, name) in KeyMap(c.Layers))
        {
            var t = state[ours];
            tensors.Add(KeyValuePair.Create(name, ours == SharedKey ? t.narrow(0, specialRows, t.shape[0] - specialRows) : t));
        }
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" });
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("T5ForConditionalGeneration"),
            ["model_type"] = ModelType,
            ["vocab_size"] = c.VocabSize - specialRows,
            ["d_model"] = c.HiddenSize,
            ["d_kv"] = c.HiddenSize / c.Heads,
            ["d_ff"] = c.IntermediateSize,
            ["num_layers"] = c.Layers,
            ["num_decoder_layers"] = c.Layers,
            ["num_heads"] = c.Heads,
            ["relative_attention_num_buckets"] = c.RelativeBuckets,
            ["relative_attention_max_distance"] = c.RelativeMaxDistance,
            ["dropout_rate"] = c.Dropout,
            ["layer_norm_epsilon"] = c.LayerNormEps,
            ["initializer_factor"] = 1.0,
            ["feed_forward_proj"] = "relu",
            ["is_encoder_decoder"] = true,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = "float32",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    private const string SharedKey = "shared.weight";

    /// <summary>DistTrain <see cref="T5Model"/> name ↔ T5ForConditionalGeneration name (all nn.Linear (out, in): no transposes).</summary>
    private static List<(string Ours, string Hf)> KeyMap(int layers)
    {
        var map = new List<(string, string)>
        {
            (SharedKey, SharedKey),
            ("encoder_bias.bias.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            ("decoder_bias.bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            ("encoder_norm.weight", "encoder.final_layer_norm.weight"),
            ("decoder_norm.weight", "decoder.final_layer_norm.weight"),
        };
        void Attention(string ours, string hf)
        {
            foreach (var p in new[] { "q", "k", "v", "o" }) map.Add(($"{ours}.{p}.weight", $"{hf}.{p}.weight"));
        }
        for (int i = 0; i < layers; i++)
        {
            string e = $"encoder.{i}.", he = $"encoder.block.{i}.layer.";
            map.Add((e + "self_norm.weight", he + "0.layer_norm.weight"));
            Attention(e + "self_attention", he + "0.SelfAttention");
            map.Add((e + "mlp_norm.weight", he + "1.layer_norm.weight"));
            map.Add((e + "wi.weight", he + "1.DenseReluDense.wi.weight"));
            map.Add((e + "wo.weight", he + "1.DenseReluDense.wo.weight"));

            string d = $"decoder.{i}.", hd = $"decoder.block.{i}.layer.";
            map.Add((d + "self_norm.weight", hd + "0.layer_norm.weight"));
            Attention(d + "self_attention", hd + "0.SelfAttention");
            map.Add((d + "cross_norm.weight", hd + "1.layer_norm.weight"));
            Attention(d + "cross_attention", hd + "1.EncDecAttention");
            map.Add((d + "mlp_norm.weight", hd + "2.layer_norm.weight"));
            map.Add((d + "wi.weight", hd + "2.DenseReluDense.wi.weight"));
            map.Add((d + "wo.weight", hd + "2.DenseReluDense.wo.weight"));
        }
        return map;
    }

    private static int Int(JsonObject json, string path, string field) =>
        json[field] is JsonValue v ? (int)v : throw new InvalidDataException($"{path}: {field} is missing.");
}
