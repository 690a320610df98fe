using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face XLNet checkpoints (XLNetLMHeadModel: config.json + safetensors) in and out of <see cref="XLNetLanguageModel"/>.
/// </summary>
/// <remarks>
/// The two compute the same function on one segment without memory: post-LN layers, Transformer-XL relative attention
/// ((q + r_w_bias)·k + (q + r_r_bias)·r(R[i − j]), scaled by 1/√d_head, sinusoids sin|cos with 1/10000^(2i/d) as
/// DistTrain's), exact-GELU MLPs, mask_emb as the query stream's start, and an output layer tied to the word embeddings
/// with its own bias. The reference stores q, k, v, r and o as (d_model, n_head, d_head) einsum tensors: q, k, v and r are
/// the transposed nn.Linear weights, o is the weight itself. DistTrain's XLNet has no segment encoding: with one segment
/// (or no token_type_ids) the reference's segment term (q + r_s_bias)·seg_embed[same] is the same for every key and
/// cancels in the softmax, so import reads r_s_bias and seg_embed and drops them, and export writes zeros (which make the
/// term zero for any segments). Refused with the reason: attn_type uni, bi_data, a positive clamp_len, same_length, an
/// activation other than exact gelu, d_head·n_head ≠ d_model, an untied lm_loss. See docs/interop.md.
/// </remarks>
public static class HfXLNet
{
    /// <summary>config.json's model_type for this family.</summary>
    public const string ModelType = "xlnet";

    /// <summary>The DistTrain config a checkpoint directory describes (VocabSize includes the special rows).</summary>
    /// <exception cref="InvalidDataException">config.json is not XLNet's, or asks for math DistTrain's XLNet does not do; the message says what differs.</exception>
    public static XLNetConfig ReadConfig(string dir, int specialRows)
    {
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if ((json["model_type"] as JsonValue)?.GetValue<string>() != ModelType)
            throw new InvalidDataException($"{path}: model_type is '{json["model_type"]}', expected '{ModelType}'.");
        int hidden = Int(json, path, "d_model"), heads = Int(json, path, "n_head");
        void Refuse(bool when, string why) { if (when) throw new InvalidDataException($"{path}: {why}"); }
        Refuse(Str(json, "attn_type", "bi") != "bi", $"attn_type '{Str(json, "attn_type", "bi")}' is not supported: DistTrain's xlnet attends bidirectionally (bi).");
        Refuse(Bool(json, "bi_data", false), "bi_data true is not supported: DistTrain's xlnet has one positional direction.");
        Refuse(json["clamp_len"] is JsonValue c && (int)c > 0, "a positive clamp_len is not supported: DistTrain's xlnet never clamps relative distances.");
        Refuse(Bool(json, "same_length", false), "same_length true is not supported: DistTrain's xlnet has no memory to equalise.");
        Refuse(Str(json, "ff_activation", "gelu") != "gelu", $"ff_activation '{Str(json, "ff_activation", "gelu")}' is not supported: DistTrain's xlnet uses exact GELU.");
        Refuse(json["d_head"] is JsonValue d && (int)d * heads != hidden, $"d_head × n_head ≠ d_model {hidden}: DistTrain's xlnet splits d_model into the heads.");
        Refuse(json["tie_word_embeddings"] is JsonValue tie && !(bool)tie, "tie_word_embeddings false is not supported: DistTrain's xlnet ties its output layer to the word embeddings.");
        return new XLNetConfig
        {
            VocabSize = specialRows + Int(json, path, "vocab_size"),
            HiddenSize = hidden,
            Layers = Int(json, path, "n_layer"),
            Heads = heads,
            IntermediateSize = Int(json, path, "d_inner"),
            LayerNormEps = json["layer_norm_eps"] is JsonValue eps ? (double)eps : 1e-12,
            Dropout = json["dropout"] is JsonValue drop ? (double)drop : 0.1,
            AttentionDropout = json["dropout"] is JsonValue attn ? (double)attn : 0.1,
            InitStd = json["initializer_range"] is JsonValue std ? (double)std : 0.02,
        };
    }

    /// <summary>
    /// Copies a checkpoint's tensors into model (built from <see cref="ReadConfig"/>). DistTrain's pad, bos and eos rows (of
    /// the table and the output bias) copy the checkpoint's pad_token_id, bos_token_id and eos_token_id rows; the others
    /// are the mean row.
    /// </summary>
    /// <exception cref="InvalidDataException">a tensor is missing, unmatched or of the wrong shape; the message lists the names.</exception>
    public static void Import(XLNetLanguageModel model, string dir, int specialRows, int padId = 0, int bosId = 1, int eosId = 2)
    {
        var hf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in Safetensors.ReadDirectory(dir))
            hf[name.StartsWith("transformer.", StringComparison.Ordinal) ? name["transformer.".Length..] : name] = t;
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        if (hf.Remove("lm_loss.weight", out var head) && !(hf.TryGetValue(TableKey, out var table) && head.shape.SequenceEqual(table.shape) && head.eq(table).all().item<bool>()))
            throw new InvalidDataException($"{dir}: lm_loss.weight differs from word_embedding.weight; an untied output layer is not supported.");
        int layers = model.Backbone.Config.Layers;
        for (int i = 0; i < layers; i++)
        {
            hf.Remove($"layer.{i}.rel_attn.r_s_bias");   // the segment term: constant over keys with one segment (remarks)
            hf.Remove($"layer.{i}.rel_attn.seg_embed");
        }

        var state = model.state_dict();
        var map = KeyMap(layers);
        var missing = map.Where(m => !hf.ContainsKey(m.Hf)).Select(m => m.Hf).ToList();
        var unmatched = hf.Keys.Except(map.Select(m => m.Hf)).ToList();
        var uncovered = state.Keys.Except(map.Select(m => m.Ours)).ToList();
        if (missing.Count + unmatched.Count + uncovered.Count > 0)
            throw new InvalidDataException($"{dir}: the checkpoint does not match an XLNet of this shape."
                + (missing.Count > 0 ? $" Missing: {string.Join(", ", missing)}." : "")
                + (unmatched.Count > 0 ? $" Unmatched: {string.Join(", ", unmatched)}." : "")
                + (uncovered.Count > 0 ? $" Model tensors with no source: {string.Join(", ", uncovered)}." : ""));

        using var _ = no_grad();
        int Id(string field, int fallback) => config[field] is JsonValue v ? (int)v : fallback;
        var sources = new Dictionary<int, int> { [padId] = Id("pad_token_id", 5), [bosId] = Id("bos_token_id", 1), [eosId] = Id("eos_token_id", 2) };
        foreach (var (ours, name, layout) in map)
        {
            var target = state[ours];
            var source = layout switch
            {
                Layout.Einsum => hf[name].reshape(hf[name].shape[0], -1).t(),              // (H, n, d) → (n·d, H)
                Layout.EinsumOut => hf[name].reshape(hf[name].shape[0], -1),               // (H, n, d) → (H, n·d)
                _ => hf[name],
            };
            if (layout == Layout.Vocab)
            {
                long v = source.shape[0];
                if (target.shape[0] != specialRows + v || (source.dim() == 2 && target.shape[1] != source.shape[1]))
                    throw new InvalidDataException($"{dir}: {name} has {v} rows; the model expects {target.shape[0] - specialRows}.");
                target.narrow(0, specialRows, v).copy_(source);
                var mean = source.mean([0]);
                for (int row = 0; row < specialRows; row++)
                    target[row].copy_(sources.TryGetValue(row, out var r) && r >= 0 && r < v ? source[r] : mean);
                continue;
            }
            if (!target.shape.SequenceEqual(source.shape))
                throw new InvalidDataException($"{dir}: {name} is ({string.Join(", ", hf[name].shape)}); it does not fit ({string.Join(", ", target.shape)}).");
            target.copy_(source);
        }
    }

    /// <summary>Writes config.json and model.safetensors (XLNetLMHeadModel names, the special rows dropped, a zero segment term) into dir.</summary>
    public static void Export(XLNetLanguageModel model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var c = model.Backbone.Config;
        int heads = c.Heads, hd = c.HiddenSize / c.Heads;
        Directory.CreateDirectory(dir);
        var state = model.state_dict();
        using var _ = no_grad();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (ours, name, layout) in KeyMap(c.Layers))
        {
            var t = state[ours];
            t = layout switch
            {
                Layout.Vocab => t.narrow(0, specialRows, t.shape[0] - specialRows),
                Layout.Einsum => t.t().contiguous().view(c.HiddenSize, heads, hd),
                Layout.EinsumOut => t.contiguous().view(c.HiddenSize, heads, hd),
                _ => t,
            };
            tensors.Add(KeyValuePair.Create(name == "lm_loss.bias" ? name : "transformer." + name, t));
        }
        for (int i = 0; i < c.Layers; i++)
        {
            tensors.Add(KeyValuePair.Create($"transformer.layer.{i}.rel_attn.r_s_bias", zeros(heads, hd)));
            tensors.Add(KeyValuePair.Create($"transformer.layer.{i}.rel_attn.seg_embed", zeros(2, heads, hd)));
        }
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" });
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("XLNetLMHeadModel"),
            ["model_type"] = ModelType,
            ["vocab_size"] = c.VocabSize - specialRows,
            ["d_model"] = c.HiddenSize,
            ["n_layer"] = c.Layers,
            ["n_head"] = heads,
            ["d_head"] = hd,
            ["d_inner"] = c.IntermediateSize,
            ["ff_activation"] = "gelu",
            ["untie_r"] = true,
            ["attn_type"] = "bi",
            ["bi_data"] = false,
            ["clamp_len"] = -1,
            ["same_length"] = false,
            ["mem_len"] = null,
            ["layer_norm_eps"] = c.LayerNormEps,
            ["dropout"] = c.Dropout,
            ["initializer_range"] = c.InitStd,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = "float32",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    private enum Layout { Same, Vocab, Einsum, EinsumOut }

    private const string TableKey = "word_embedding.weight";

    /// <summary>DistTrain <see cref="XLNetLanguageModel"/> name ↔ XLNetLMHeadModel name (without "transformer."), and how the tensor is laid out.</summary>
    private static List<(string Ours, string Hf, Layout Layout)> KeyMap(int layers)
    {
        var map = new List<(string, string, Layout)>
        {
            ("encoder.token.weight", TableKey, Layout.Vocab),
            ("encoder.query_start", "mask_emb", Layout.Same),
            ("output_bias", "lm_loss.bias", Layout.Vocab),
        };
        for (int i = 0; i < layers; i++)
        {
            string o = $"encoder.layers.{i}.", h = $"layer.{i}.";
            foreach (var p in new[] { "q", "k", "v", "r" }) map.Add((o + $"attention.{p}.weight", h + $"rel_attn.{p}", Layout.Einsum));
            map.Add((o + "attention.o.weight", h + "rel_attn.o", Layout.EinsumOut));
            map.Add((o + "attention.content_bias", h + "rel_attn.r_w_bias", Layout.Same));
            map.Add((o + "attention.position_bias", h + "rel_attn.r_r_bias", Layout.Same));
            map.Add((o + "attention_norm.weight", h + "rel_attn.layer_norm.weight", Layout.Same));
            map.Add((o + "attention_norm.bias", h + "rel_attn.layer_norm.bias", Layout.Same));
            map.Add((o + "fc_in.weight", h + "ff.layer_1.weight", Layout.Same));
            map.Add((o + "fc_in.bias", h + "ff.layer_1.bias", Layout.Same));
            map.Add((o + "fc_out.weight", h + "ff.layer_2.weight", Layout.Same));
            map.Add((o + "fc_out.bias", h + "ff.layer_2.bias", Layout.Same));
            map.Add((o + "mlp_norm.weight", h + "ff.layer_norm.weight", Layout.Same));
            map.Add((o + "mlp_norm.bias", h + "ff.layer_norm.bias", Layout.Same));
        }
        return map;
    }

    private static int Int(JsonObject json, string path, string field) =>
        json[field] is JsonValue v ? (int)v : throw new InvalidDataException($"{path}: {field} is missing.");

    private static string Str(JsonObject json, string field, string fallback) => json[field] is JsonValue v ? (string)v! : fallback;

    private static bool Bool(JsonObject json, string field, bool fallback) => json[field] is JsonValue v ? (bool)v : fallback;
}
