using System.Text.Json.Nodes;
using DistTrain.Models.Interop;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Interop;

/// <summary>
/// T5 (v1.0, T5ForConditionalGeneration) in Hugging Face layout: the test writes a small reference checkpoint from the
/// published key map and config (relative_attention_bias in each stack's first block, RMS norms without bias, ReLU
/// DenseReluDense), imports it, and checks the round trip bit for bit, the encoder against plain matrix arithmetic,
/// and the logits against the family's own forward on the same weights.
/// </summary>
public sealed class HfT5Tests : IDisposable
{
    private const int Special = 38;
    private const int V = 24, H = 16, A = 2, I = 32, L = 2, Buckets = 8, MaxDistance = 16, Pad = 0, Eos = 1;
    private readonly string root = Directory.CreateTempSubdirectory("hf-t5-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>Random T5ForConditionalGeneration tensors under their reference names.</summary>
    private static List<KeyValuePair<string, Tensor>> ReferenceTensors()
    {
        Tiny.Seed(11);
        var t = new List<KeyValuePair<string, Tensor>>();
        void Add(string name, params long[] shape) => t.Add(KeyValuePair.Create(name, randn(shape) * 0.3));
        void Norm(string name) => t.Add(KeyValuePair.Create(name, 1 + randn(H) * 0.1));
        void Attention(string p) { foreach (var x in new[] { "q", "k", "v", "o" }) Add($"{p}.{x}.weight", H, H); }
        Add("shared.weight", V, H);
        for (int i = 0; i < L; i++)
        {
            string e = $"encoder.block.{i}.layer.";
            Attention(e + "0.SelfAttention");
            if (i == 0) Add(e + "0.SelfAttention.relative_attention_bias.weight", Buckets, A);
            Norm(e + "0.layer_norm.weight");
            Add(e + "1.DenseReluDense.wi.weight", I, H);
            Add(e + "1.DenseReluDense.wo.weight", H, I);
            Norm(e + "1.layer_norm.weight");
            string d = $"decoder.block.{i}.layer.";
            Attention(d + "0.SelfAttention");
            if (i == 0) Add(d + "0.SelfAttention.relative_attention_bias.weight", Buckets, A);
            Norm(d + "0.layer_norm.weight");
            Attention(d + "1.EncDecAttention");
            Norm(d + "1.layer_norm.weight");
            Add(d + "2.DenseReluDense.wi.weight", I, H);
            Add(d + "2.DenseReluDense.wo.weight", H, I);
            Norm(d + "2.layer_norm.weight");
        }
        Norm("encoder.final_layer_norm.weight");
        Norm("decoder.final_layer_norm.weight");
        return t;
    }

    private string WriteCheckpoint(string name, IEnumerable<KeyValuePair<string, Tensor>>? tensors = null, Action<JsonObject>? edit = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), (tensors ?? ReferenceTensors()).ToList());
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("T5ForConditionalGeneration"), ["model_type"] = "t5", ["vocab_size"] = V,
            ["d_model"] = H, ["d_kv"] = H / A, ["d_ff"] = I, ["num_layers"] = L, ["num_decoder_layers"] = L, ["num_heads"] = A,
            ["relative_attention_num_buckets"] = Buckets, ["relative_attention_max_distance"] = MaxDistance,
            ["dropout_rate"] = 0.1, ["layer_norm_epsilon"] = 1e-6, ["feed_forward_proj"] = "relu", ["is_encoder_decoder"] = true,
            ["tie_word_embeddings"] = true, ["pad_token_id"] = Pad, ["eos_token_id"] = Eos, ["decoder_start_token_id"] = Pad,
        };
        edit?.Invoke(config);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    }

    private static T5Model Import(string dir)
    {
        var model = new T5Model(HfT5.ReadConfig(dir, Special));
        HfT5.Import(model, dir, Special);
        model.eval();
        return model;
    }

    [Fact]
    public void Config_json_becomes_a_t5_config_with_the_special_rows_added()
    {
        var c = HfT5.ReadConfig(WriteCheckpoint("c"), Special);
        Assert.Equal((Special + V, H, L, A, I, Buckets, MaxDistance), (c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.IntermediateSize, c.RelativeBuckets, c.RelativeMaxDistance));
        Assert.Equal(1e-6, c.LayerNormEps);
        Assert.Equal(0, c.DecoderStartTokenId);
    }

    [Fact]
    public void Import_then_export_reproduces_every_tensor_bit_for_bit()
    {
        var source = WriteCheckpoint("in");
        string output = Path.Combine(root, "out");
        using (var model = Import(source)) HfT5.Export(model, output, Special);
        var a = Safetensors.Read(Path.Combine(source, "model.safetensors"));
        var b = Safetensors.Read(Path.Combine(output, "model.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a)
        {
            Assert.Equal(t.shape, b[name].shape);
            Assert.True(t.bytes.SequenceEqual(b[name].bytes), $"{name} changed in the round trip");
        }
        Assert.Equal(HfT5.ReadConfig(source, Special), HfT5.ReadConfig(output, Special));
    }

    [Fact]
    public void The_encoder_equals_plain_matrix_arithmetic_on_a_3_token_input()
    {
        var dir = WriteCheckpoint("hand");
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors"));
        using var model = Import(dir);
        using var _ = no_grad();
        var hfIds = tensor(new long[] { 5, 17, 2 });                                       // (T) reference ids
        var x = w["shared.weight"].index_select(0, hfIds);                                  // (T, H)
        var first = HandEncoderBlock(w, 0, x);                                              // (T, H)
        for (int i = 1; i < L; i++) first = HandEncoderBlock(w, i, first);
        var expected = HandRms(first, w["encoder.final_layer_norm.weight"]);               // (T, H)
        var encoded = model.Encode((hfIds + Special).unsqueeze(0), null)[0];                // (T, H)
        Assert.True(encoded.allclose(expected, 0, 1e-5), $"encoder differs from the hand computation by {(encoded - expected).abs().max().item<float>()}");

        // The first block alone: a one-layer checkpoint with the same first-block tensors, compared after the final norm.
        var oneLayer = ReferenceTensors().Where(kv => !kv.Key.Contains(".block.1.")).ToList();
        var oneDir = WriteCheckpoint("one", oneLayer, c => { c["num_layers"] = 1; c["num_decoder_layers"] = 1; });
        using var one = Import(oneDir);
        var block = HandRms(HandEncoderBlock(w, 0, x), w["encoder.final_layer_norm.weight"]);
        Assert.True(one.Encode((hfIds + Special).unsqueeze(0), null)[0].allclose(block, 0, 1e-5), "the first encoder block differs from the hand computation");
    }

    /// <summary>One T5 encoder block written out: RMS norm, unscaled attention plus the bucketed position bias, ReLU MLP.</summary>
    private static Tensor HandEncoderBlock(Dictionary<string, Tensor> w, int layer, Tensor x)
    {
        string p = $"encoder.block.{layer}.layer.";
        int t = (int)x.shape[0], hd = H / A;
        var table = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]; // (buckets, nh): the first block's, for every block
        var n = HandRms(x, w[p + "0.layer_norm.weight"]);
        var q = n.matmul(w[p + "0.SelfAttention.q.weight"].t());                            // (T, H)
        var k = n.matmul(w[p + "0.SelfAttention.k.weight"].t());
        var v = n.matmul(w[p + "0.SelfAttention.v.weight"].t());
        var heads = new List<Tensor>();
        for (int a = 0; a < A; a++)
        {
            var scores = q.narrow(1, a * hd, hd).matmul(k.narrow(1, a * hd, hd).t());      // (T, T), no 1/sqrt(d)
            var bias = zeros(t, t);
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++)
                    bias[i, j] = table[Bucket(j - i), a];
            heads.Add((scores + bias).softmax(1).matmul(v.narrow(1, a * hd, hd)));         // (T, hd)
        }
        x = x + cat(heads, 1).matmul(w[p + "0.SelfAttention.o.weight"].t());               // (T, H)
        var u = HandRms(x, w[p + "1.layer_norm.weight"]).matmul(w[p + "1.DenseReluDense.wi.weight"].t()).relu(); // (T, I)
        return x + u.matmul(w[p + "1.DenseReluDense.wo.weight"].t());                      // (T, H)
    }

    /// <summary>The reference's bidirectional bucket of key − query, in single precision as the reference computes it.</summary>
    private static int Bucket(int relative)
    {
        int n = Buckets / 2, bucket = relative > 0 ? n : 0, distance = Math.Abs(relative), exact = n / 2;
        if (distance < exact) return bucket + distance;
        int large = exact + (int)(MathF.Log(distance / (float)exact) / MathF.Log(MaxDistance / (float)exact) * (n - exact));
        return bucket + Math.Min(large, n - 1);
    }

    private static Tensor HandRms(Tensor x, Tensor gain) => x / (x.pow(2).mean([1], keepdim: true) + 1e-6).sqrt() * gain;

    [Fact]
    public void Logits_equal_the_family_forward_on_the_same_weights()
    {
        var dir = WriteCheckpoint("f");
        using var imported = Import(dir);
        // The family's own model with the same weights, set by DistTrain's state-dict names from the reference tensors.
        using var family = new T5Model(HfT5.ReadConfig(dir, Special));
        family.eval();
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors"));
        using (no_grad())
        {
            var state = family.state_dict();
            foreach (var (name, target) in state)
            {
                string hf = name switch
                {
                    "shared.weight" => name,
                    "encoder_bias.bias.weight" => "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                    "decoder_bias.bias.weight" => "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                    "encoder_norm.weight" => "encoder.final_layer_norm.weight",
                    "decoder_norm.weight" => "decoder.final_layer_norm.weight",
                    _ => ReferenceName(name),
                };
                if (name == "shared.weight") target.narrow(0, Special, V).copy_(w[hf]);
                else target.copy_(w[hf]);
            }
            // DistTrain's own special rows are not the reference's; import makes pad (the decoder's start) the
            // reference's pad row and eos its eos row, and the family model takes the same rows.
            var table = imported.state_dict()["shared.weight"];
            Assert.True(table[0].eq(w["shared.weight"][Pad]).all().item<bool>() && table[2].eq(w["shared.weight"][Eos]).all().item<bool>(), "pad and eos rows are not the reference's");
            state["shared.weight"].narrow(0, 0, Special).copy_(table.narrow(0, 0, Special));
        }
        using var _ = no_grad();
        var ids = tensor(new long[,] { { 40, 55, 43, 0 }, { 61, 39, 38, 44 } });           // (B, S), row 0 padded
        var mask = ids.ne(0).to(ScalarType.Int64);
        var decoderInputs = tensor(new long[,] { { 0, 47, 50 }, { 0, 38, 60 } });          // (B, T), start = pad
        var a = imported.forward(ids, mask, decoderInputs).narrow(2, Special, V);          // (B, T, V)
        var b = family.forward(ids, mask, decoderInputs).narrow(2, Special, V);
        Assert.True(a.allclose(b, 0, 1e-6), $"logits differ by {(a - b).abs().max().item<float>()}");
    }

    /// <summary>encoder.{i}.self_attention.q.weight → encoder.block.{i}.layer.0.SelfAttention.q.weight, and so on (the published key map).</summary>
    private static string ReferenceName(string ours)
    {
        var parts = ours.Split('.');
        string stack = parts[0], i = parts[1], module = parts[2];
        bool decoder = stack == "decoder";
        string tail = string.Join('.', parts.Skip(3));
        return module switch
        {
            "self_norm" => $"{stack}.block.{i}.layer.0.layer_norm.{tail}",
            "self_attention" => $"{stack}.block.{i}.layer.0.SelfAttention.{tail}",
            "cross_norm" => $"{stack}.block.{i}.layer.1.layer_norm.{tail}",
            "cross_attention" => $"{stack}.block.{i}.layer.1.EncDecAttention.{tail}",
            "mlp_norm" => $"{stack}.block.{i}.layer.{(decoder ? 2 : 1)}.layer_norm.{tail}",
            "wi" or "wo" => $"{stack}.block.{i}.layer.{(decoder ? 2 : 1)}.DenseReluDense.{module}.{tail}",
            _ => throw new InvalidOperationException($"unexpected T5 parameter {ours}"),
        };
    }

    [Fact]
    public void Missing_and_unmatched_tensors_are_errors_that_name_them()
    {
        var tensors = ReferenceTensors().Where(kv => kv.Key != "decoder.block.1.layer.1.EncDecAttention.k.weight").ToList();
        tensors.Add(KeyValuePair.Create("decoder.block.1.layer.2.DenseReluDense.wi_0.weight", zeros(I, H)));
        var error = Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint("bad", tensors)));
        Assert.Contains("Missing: decoder.block.1.layer.1.EncDecAttention.k.weight", error.Message);
        Assert.Contains("Unmatched: decoder.block.1.layer.2.DenseReluDense.wi_0.weight", error.Message);
    }

    [Fact]
    public void Tied_copies_of_the_table_are_accepted_and_other_math_is_refused_with_the_reason()
    {
        var tensors = ReferenceTensors();
        var shared = tensors.Single(kv => kv.Key == "shared.weight").Value;
        tensors.Add(KeyValuePair.Create("encoder.embed_tokens.weight", shared.clone()));
        tensors.Add(KeyValuePair.Create("lm_head.weight", shared.clone()));
        using (Import(WriteCheckpoint("copies", tensors))) { }
        tensors[^1] = KeyValuePair.Create("lm_head.weight", shared * 2);
        Assert.Contains("lm_head.weight differs from shared.weight", Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint("untied-head", tensors))).Message);

        Assert.Contains("gated", Assert.Throws<InvalidDataException>(() => HfT5.ReadConfig(WriteCheckpoint("gated", edit: c => c["feed_forward_proj"] = "gated-gelu"), Special)).Message);
        Assert.Contains("d_model^-0.5", Assert.Throws<InvalidDataException>(() => HfT5.ReadConfig(WriteCheckpoint("untied", edit: c => c["tie_word_embeddings"] = false), Special)).Message);
        Assert.Contains("d_kv", Assert.Throws<InvalidDataException>(() => HfT5.ReadConfig(WriteCheckpoint("dkv", edit: c => c["d_kv"] = 4), Special)).Message);
        Assert.Contains("num_decoder_layers", Assert.Throws<InvalidDataException>(() => HfT5.ReadConfig(WriteCheckpoint("depth", edit: c => c["num_decoder_layers"] = 1), Special)).Message);
    }
}
