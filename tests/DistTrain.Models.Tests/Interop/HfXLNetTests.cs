using System.Text.Json.Nodes;
using DistTrain.Models.Interop;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Interop;

/// <summary>
/// XLNet in Hugging Face layout (XLNetLMHeadModel): the test writes a small reference checkpoint from the published key
/// map ((d_model, n_head, d_head) einsum tensors, r_w/r_r/r_s biases, seg_embed, mask_emb, lm_loss.bias), imports it and
/// checks the round trip and the first layer against the reference's formulas written out here, segment term included.
/// </summary>
public sealed class HfXLNetTests : IDisposable
{
    private const int Special = 38;
    private const int V = 24, H = 16, A = 2, D = H / A, I = 32, Pad = 5, Bos = 1, Eos = 2;
    private readonly string root = Directory.CreateTempSubdirectory("hf-xlnet-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static List<KeyValuePair<string, Tensor>> ReferenceTensors(int layers)
    {
        Tiny.Seed(13);
        var t = new List<KeyValuePair<string, Tensor>>();
        void Add(string name, params long[] shape) => t.Add(KeyValuePair.Create(name, randn(shape) * 0.3));
        void Norm(string name) { t.Add(KeyValuePair.Create(name + ".weight", 1 + randn(H) * 0.1)); Add(name + ".bias", H); }
        Add("transformer.word_embedding.weight", V, H);
        Add("transformer.mask_emb", 1, 1, H);
        for (int i = 0; i < layers; i++)
        {
            string p = $"transformer.layer.{i}.";
            foreach (var m in new[] { "q", "k", "v", "o", "r" }) Add(p + "rel_attn." + m, H, A, D);
            foreach (var b in new[] { "r_r_bias", "r_s_bias", "r_w_bias" }) Add(p + "rel_attn." + b, A, D);
            Add(p + "rel_attn.seg_embed", 2, A, D);
            Norm(p + "rel_attn.layer_norm");
            Add(p + "ff.layer_1.weight", I, H);
            Add(p + "ff.layer_1.bias", I);
            Add(p + "ff.layer_2.weight", H, I);
            Add(p + "ff.layer_2.bias", H);
            Norm(p + "ff.layer_norm");
        }
        Add("lm_loss.bias", V);
        return t;
    }

    private string WriteCheckpoint(string name, int layers = 2, IEnumerable<KeyValuePair<string, Tensor>>? tensors = null, Action<JsonObject>? edit = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), (tensors ?? ReferenceTensors(layers)).ToList());
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("XLNetLMHeadModel"), ["model_type"] = "xlnet", ["vocab_size"] = V, ["d_model"] = H,
            ["n_layer"] = layers, ["n_head"] = A, ["d_head"] = D, ["d_inner"] = I, ["ff_activation"] = "gelu", ["untie_r"] = true,
            ["attn_type"] = "bi", ["bi_data"] = false, ["clamp_len"] = -1, ["same_length"] = false, ["layer_norm_eps"] = 1e-12,
            ["dropout"] = 0.1, ["pad_token_id"] = Pad, ["bos_token_id"] = Bos, ["eos_token_id"] = Eos,
        };
        edit?.Invoke(config);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    }

    private static XLNetLanguageModel Import(string dir)
    {
        var model = new XLNetLanguageModel(HfXLNet.ReadConfig(dir, Special));
        HfXLNet.Import(model, dir, Special);
        model.eval();
        return model;
    }

    [Fact]
    public void Import_then_export_reproduces_every_tensor_and_zeroes_the_segment_term()
    {
        var source = WriteCheckpoint("in");
        string output = Path.Combine(root, "out");
        using (var model = Import(source)) HfXLNet.Export(model, output, Special);
        var a = Safetensors.Read(Path.Combine(source, "model.safetensors"));
        var b = Safetensors.Read(Path.Combine(output, "model.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a)
        {
            Assert.Equal(t.shape, b[name].shape);
            if (name.EndsWith("r_s_bias") || name.EndsWith("seg_embed")) Assert.True(b[name].eq(0).all().item<bool>(), $"{name} is not zero");
            else Assert.True(t.bytes.SequenceEqual(b[name].bytes), $"{name} changed in the round trip");
        }
        Assert.Equal(HfXLNet.ReadConfig(source, Special), HfXLNet.ReadConfig(output, Special));
    }

    [Fact]
    public void The_first_layer_equals_the_references_formulas_on_a_3_token_input()
    {
        var dir = WriteCheckpoint("hand", layers: 1);
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors")).ToDictionary(kv => kv.Key.Replace("transformer.", ""), kv => kv.Value);
        using var model = Import(dir);
        using var _ = no_grad();
        var hfIds = tensor(new long[] { 7, 20, 3 });
        var x = w["word_embedding.weight"].index_select(0, hfIds);                               // (T, H)
        int t = 3;
        Tensor Project(string m) => x.matmul(w["layer.0.rel_attn." + m].reshape(H, H)).view(t, A, D); // einsum ibh,hnd->ibnd
        var (q, k, v) = (Project("q"), Project("k"), Project("v"));                              // (T, nh, d)
        var vec = zeros(t, A, D);
        for (int i = 0; i < t; i++) vec[i] = HandAttention(w, q[i], k, v, i, Enumerable.Range(0, t));
        var expected = HandPostAttention(w, vec, x);
        var actual = model.Backbone.forward((hfIds + Special).unsqueeze(0), null, null)[0];      // (T, H) content stream
        Assert.True(actual.allclose(expected, 0, 1e-5), $"first layer differs by {(actual - expected).abs().max().item<float>()}");

        // Output layer: tied to the word embeddings, with lm_loss.bias; the special rows follow pad/bos/eos.
        var table = model.Backbone.Token.weight!;
        Assert.True(table[0].eq(w["word_embedding.weight"][Pad]).all().item<bool>() && table[2].eq(w["word_embedding.weight"][Eos]).all().item<bool>());
    }

    /// <summary>
    /// The reference's attention of one query (nh, d) at position i over the keys js of layer 0: the score
    /// ((q + r_w_bias)·k_j + (q + r_r_bias)·r(R(i − j)) + (q + r_s_bias)·seg_embed[same]) / √d, softmax, values → (nh, d).
    /// </summary>
    private static Tensor HandAttention(Dictionary<string, Tensor> w, Tensor query, Tensor k, Tensor v, int i, IEnumerable<int> js)
    {
        var keys = js.ToArray();
        var inverse = Enumerable.Range(0, H / 2).Select(j => 1.0 / Math.Pow(10000, 2.0 * j / H)).ToArray();
        Tensor Sinusoid(int distance) => tensor(inverse.Select(f => (float)Math.Sin(distance * f)).Concat(inverse.Select(f => (float)Math.Cos(distance * f))).ToArray()); // (H)
        var rw = w["layer.0.rel_attn.r_w_bias"]; var rr = w["layer.0.rel_attn.r_r_bias"]; var rs = w["layer.0.rel_attn.r_s_bias"];
        var same = w["layer.0.rel_attn.seg_embed"][0];                                           // (nh, d): one segment
        var result = zeros(A, D);
        for (int a = 0; a < A; a++)
        {
            var scores = zeros(keys.Length);
            for (int n = 0; n < keys.Length; n++)
            {
                int j = keys[n];
                var kr = Sinusoid(i - j).matmul(w["layer.0.rel_attn.r"].reshape(H, H)).view(A, D);   // R(i − j) through r
                var ac = (query[a] + rw[a]).dot(k[j, a]);
                var bd = (query[a] + rr[a]).dot(kr[a]);
                var ef = (query[a] + rs[a]).dot(same[a]);
                scores[n] = (ac + bd + ef) / Math.Sqrt(D);
            }
            result[a] = scores.softmax(0).matmul(v.select(1, a).index_select(0, tensor(keys.Select(j => (long)j).ToArray()))); // (d)
        }
        return result;
    }

    /// <summary>vec (T, nh, d) through o (einsum ibnd,hnd->ibh), the residual on stream (T, H), LayerNorm, then the MLP block → (T, H).</summary>
    private static Tensor HandPostAttention(Dictionary<string, Tensor> w, Tensor vec, Tensor stream)
    {
        long t = vec.shape[0];
        var attention = vec.reshape(t, H).matmul(w["layer.0.rel_attn.o"].reshape(H, H).t());
        var h1 = LayerNorm(attention + stream, "layer.0.rel_attn.layer_norm", w);
        var u = h1.matmul(w["layer.0.ff.layer_1.weight"].t()) + w["layer.0.ff.layer_1.bias"];
        var gelu = 0.5 * u * (1 + (u / Math.Sqrt(2)).erf());
        return LayerNorm(gelu.matmul(w["layer.0.ff.layer_2.weight"].t()) + w["layer.0.ff.layer_2.bias"] + h1, "layer.0.ff.layer_norm", w);
    }

    [Fact]
    public void The_query_stream_logits_equal_the_references_two_stream_formulas()
    {
        var dir = WriteCheckpoint("two-stream", layers: 1);
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors")).ToDictionary(kv => kv.Key.Replace("transformer.", ""), kv => kv.Value);
        using var model = Import(dir);
        using var _ = no_grad();
        var hfIds = tensor(new long[] { 9, 4, 15 });
        int[] ranks = [2, 0, 1];                                                                 // the factorisation order: 1, 2, 0
        var x = w["word_embedding.weight"].index_select(0, hfIds);                               // (T, H) content
        var k = x.matmul(w["layer.0.rel_attn.k"].reshape(H, H)).view(3, A, D);
        var v = x.matmul(w["layer.0.rel_attn.v"].reshape(H, H)).view(3, A, D);
        var g = w["mask_emb"].view(1, H).expand(3, H);                                           // (T, H) the query stream's start
        var qg = g.matmul(w["layer.0.rel_attn.q"].reshape(H, H)).view(3, A, D);
        var vec = zeros(3, A, D);
        // The query stream at i reads the content of the positions earlier in the order; position 1 (first) is never a target.
        foreach (int i in new[] { 0, 2 })
            vec[i] = HandAttention(w, qg[i], k, v, i, Enumerable.Range(0, 3).Where(j => ranks[j] < ranks[i]));
        var g1 = HandPostAttention(w, vec, g);                                                   // (T, H)
        var expected = g1.matmul(w["word_embedding.weight"].t()) + w["lm_loss.bias"];           // (T, V) lm_loss, tied
        var logits = model.forward((hfIds + Special).unsqueeze(0), tensor(ranks.Select(r => (long)r).ToArray()).unsqueeze(0), null)[0].narrow(1, Special, V);
        foreach (int i in new[] { 0, 2 })
            Assert.True(logits[i].allclose(expected[i], 0, 1e-5), $"position {i}: query-stream logits differ by {(logits[i] - expected[i]).abs().max().item<float>()}");
    }

    private static Tensor LayerNorm(Tensor x, string name, Dictionary<string, Tensor> w)
    {
        var mean = x.mean([1], keepdim: true);
        var variance = (x - mean).pow(2).mean([1], keepdim: true);
        return (x - mean) / (variance + 1e-12).sqrt() * w[name + ".weight"] + w[name + ".bias"];
    }

    [Fact]
    public void Missing_and_unmatched_tensors_are_named_and_other_math_is_refused_with_the_reason()
    {
        var tensors = ReferenceTensors(2).Where(kv => kv.Key != "transformer.layer.1.rel_attn.r").ToList();
        tensors.Add(KeyValuePair.Create("transformer.layer.1.rel_attn.extra", zeros(2)));
        var error = Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint("bad", tensors: tensors)));
        Assert.Contains("Missing: layer.1.rel_attn.r.", error.Message);
        Assert.Contains("Unmatched: layer.1.rel_attn.extra", error.Message);

        Assert.Contains("attends bidirectionally", Assert.Throws<InvalidDataException>(() => HfXLNet.ReadConfig(WriteCheckpoint("uni", edit: c => c["attn_type"] = "uni"), Special)).Message);
        Assert.Contains("bi_data", Assert.Throws<InvalidDataException>(() => HfXLNet.ReadConfig(WriteCheckpoint("bidata", edit: c => c["bi_data"] = true), Special)).Message);
        Assert.Contains("clamp_len", Assert.Throws<InvalidDataException>(() => HfXLNet.ReadConfig(WriteCheckpoint("clamp", edit: c => c["clamp_len"] = 4), Special)).Message);
        Assert.Contains("exact GELU", Assert.Throws<InvalidDataException>(() => HfXLNet.ReadConfig(WriteCheckpoint("relu", edit: c => c["ff_activation"] = "relu"), Special)).Message);
    }
}
