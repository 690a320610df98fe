using System.Text.Json.Nodes;
using DistTrain.Models.Interop;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Interop;

/// <summary>
/// GPT-2 in Hugging Face layout: the test writes a small reference checkpoint itself (HF names, Conv1D (in, out) weights,
/// config.json), imports it, and checks the round trip bit for bit and the forward pass against plain matrix arithmetic.
/// </summary>
public sealed class HfGpt2Tests : IDisposable
{
    internal const int Special = 38;   // DistTrain's own ids before a tokenizer's (TokenizerSpec.SpecialIds)
    internal const int V = 20, H = 16, L = 2, A = 2, I = 64, P = 8, Eos = 19;
    private readonly string root = Directory.CreateTempSubdirectory("hf-gpt2-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>Random GPT2LMHeadModel tensors under their HF names, plus the causal-mask buffer older checkpoints carry.</summary>
    internal static List<KeyValuePair<string, Tensor>> ReferenceTensors()
    {
        Tiny.Seed(7);
        var t = new List<KeyValuePair<string, Tensor>>();
        void Add(string name, params long[] shape) => t.Add(KeyValuePair.Create("transformer." + name, randn(shape) * 0.3));
        void Norm(string name) { t.Add(KeyValuePair.Create($"transformer.{name}.weight", 1 + randn(H) * 0.1)); Add(name + ".bias", H); }
        Add("wte.weight", V, H);
        Add("wpe.weight", P, H);
        for (int i = 0; i < L; i++)
        {
            Norm($"h.{i}.ln_1");
            Add($"h.{i}.attn.c_attn.weight", H, 3 * H);
            Add($"h.{i}.attn.c_attn.bias", 3 * H);
            Add($"h.{i}.attn.c_proj.weight", H, H);
            Add($"h.{i}.attn.c_proj.bias", H);
            Norm($"h.{i}.ln_2");
            Add($"h.{i}.mlp.c_fc.weight", H, I);
            Add($"h.{i}.mlp.c_fc.bias", I);
            Add($"h.{i}.mlp.c_proj.weight", I, H);
            Add($"h.{i}.mlp.c_proj.bias", H);
        }
        Norm("ln_f");
        return t;
    }

    private string WriteCheckpoint(string name, IEnumerable<KeyValuePair<string, Tensor>>? tensors = null, string modelType = "gpt2")
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        var list = (tensors ?? ReferenceTensors()).ToList();
        list.Add(KeyValuePair.Create("transformer.h.0.attn.bias", ones(1, 1, P, P).tril()));
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), list);
        File.WriteAllText(Path.Combine(dir, "config.json"), new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = V, ["n_positions"] = P, ["n_embd"] = H, ["n_layer"] = L, ["n_head"] = A,
            ["n_inner"] = null, ["activation_function"] = "gelu_new", ["layer_norm_epsilon"] = 1e-5, ["eos_token_id"] = Eos,
            ["bos_token_id"] = Eos, ["resid_pdrop"] = 0.1, ["attn_pdrop"] = 0.1,
        }.ToJsonString());
        return dir;
    }

    private static GptLanguageModel Import(string dir)
    {
        var model = new GptLanguageModel(HfGpt2.ReadConfig(dir, Special));
        HfGpt2.Import(model, dir, Special);
        model.eval();
        return model;
    }

    [Fact]
    public void Config_json_becomes_a_tanh_gelu_gpt_with_the_special_rows_added()
    {
        var config = HfGpt2.ReadConfig(WriteCheckpoint("c"), Special);
        Assert.Equal((Special + V, H, L, A, I, P), (config.VocabSize, config.HiddenSize, config.Layers, config.Heads, config.IntermediateSize, config.MaxPositions));
        Assert.Equal(GeluKind.Tanh, config.Gelu);
        Assert.Equal(1e-5, config.LayerNormEps);
    }

    [Fact]
    public void Import_then_export_reproduces_every_tensor_bit_for_bit()
    {
        var source = WriteCheckpoint("in");
        using var model = Import(source);
        var output = Path.Combine(root, "out");
        HfGpt2.Export(model, output, Special);

        var expected = Safetensors.Read(Path.Combine(source, "model.safetensors"));
        expected.Remove("transformer.h.0.attn.bias");
        var actual = Safetensors.Read(Path.Combine(output, "model.safetensors"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected)
        {
            Assert.Equal(t.shape, actual[name].shape);
            Assert.True(t.eq(actual[name]).all().item<bool>(), $"{name} changed in the round trip");
        }
        var config = HfGpt2.ReadConfig(output, Special);
        Assert.Equal(HfGpt2.ReadConfig(source, Special) with { Dropout = 0.1 }, config);
    }

    [Fact]
    public void Special_rows_are_the_end_of_text_row_for_bos_and_eos_and_the_mean_row_otherwise()
    {
        var dir = WriteCheckpoint("s");
        using var model = Import(dir);
        var wte = Safetensors.Read(Path.Combine(dir, "model.safetensors"))["transformer.wte.weight"];
        var table = model.Backbone.Embeddings.Token.weight!;
        Assert.True(Tensors.Same(table[1], wte[Eos]) && Tensors.Same(table[2], wte[Eos]));
        foreach (int row in new[] { 0, 3, 5, 37 })
            Assert.True(table[row].allclose(wte.mean([0]), 0, 1e-7), $"row {row} is not the mean row");
    }

    [Fact]
    public void Logits_equal_a_hand_computed_gpt2_forward()
    {
        var dir = WriteCheckpoint("f");
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors")).ToDictionary(kv => kv.Key.Replace("transformer.", ""), kv => kv.Value);
        using var model = Import(dir);
        var hfIds = tensor(new long[] { 3, 17, 0 });                                   // (T) GPT-2 ids
        using var _ = no_grad();

        // First block alone, then the whole stack: the model sees DistTrain ids (38 + GPT-2 id).
        var x = w["wte.weight"].index_select(0, hfIds) + w["wpe.weight"].narrow(0, 0, 3); // (T, H)
        var ids = (hfIds + Special).unsqueeze(0);                                        // (1, T)
        var embedded = model.Backbone.Embed(ids, null);                                  // (1, T, H)
        var mask = AttentionMask.Build(null, 3, causal: true, ScalarType.Float32, CPU);
        var firstBlock = model.Backbone.Layer(0).forward(embedded, mask);               // (1, T, H)
        Assert.True(firstBlock[0].allclose(HandBlock(w, 0, x), 0, 1e-5), "first block differs from the hand computation");

        for (int i = 0; i < L; i++) x = HandBlock(w, i, x);
        x = HandNorm(x, w["ln_f.weight"], w["ln_f.bias"]);
        var expected = x.matmul(w["wte.weight"].t());                                   // (T, V) GPT-2 logits
        var logits = model.forward(ids, null)[0].narrow(1, Special, V);                  // (T, V)
        Assert.True(logits.allclose(expected, 0, 1e-5), "logits differ from the hand computation");
    }

    /// <summary>One GPT-2 block from its Conv1D tensors (x · W + b, W (in, out)), written from the paper's formulas.</summary>
    internal static Tensor HandBlock(Dictionary<string, Tensor> w, int layer, Tensor x)
    {
        string p = $"h.{layer}.";
        long t = x.shape[0], hd = H / A;
        var qkv = HandNorm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"]).matmul(w[p + "attn.c_attn.weight"]) + w[p + "attn.c_attn.bias"]; // (T, 3H)
        var heads = new List<Tensor>();
        for (int a = 0; a < A; a++)
        {
            var q = qkv.narrow(1, a * hd, hd);                                          // (T, hd)
            var k = qkv.narrow(1, H + a * hd, hd);
            var v = qkv.narrow(1, 2 * H + a * hd, hd);
            var scores = q.matmul(k.t()) / Math.Sqrt(hd);                                // (T, T)
            var future = ones(t, t).triu(1).to(ScalarType.Bool);
            heads.Add(scores.masked_fill(future, double.NegativeInfinity).softmax(1).matmul(v)); // (T, hd)
        }
        x = x + cat(heads, 1).matmul(w[p + "attn.c_proj.weight"]) + w[p + "attn.c_proj.bias"]; // (T, H)
        var u = HandNorm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"]).matmul(w[p + "mlp.c_fc.weight"]) + w[p + "mlp.c_fc.bias"]; // (T, I)
        var gelu = 0.5 * u * (1 + tanh(Math.Sqrt(2 / Math.PI) * (u + 0.044715 * u.pow(3))));                                     // gelu_new
        return x + gelu.matmul(w[p + "mlp.c_proj.weight"]) + w[p + "mlp.c_proj.bias"];                                          // (T, H)
    }

    internal static Tensor HandNorm(Tensor x, Tensor gain, Tensor bias)
    {
        var mean = x.mean([1], keepdim: true);
        var variance = (x - mean).pow(2).mean([1], keepdim: true);                      // biased, as LayerNorm
        return (x - mean) / (variance + 1e-5).sqrt() * gain + bias;
    }

    [Fact]
    public void A_sharded_checkpoint_loads_the_same_weights()
    {
        var single = WriteCheckpoint("one");
        var tensors = ReferenceTensors();
        var dir = WriteCheckpoint("sharded");
        File.Delete(Path.Combine(dir, "model.safetensors"));
        var half = tensors.Count / 2;
        Safetensors.Write(Path.Combine(dir, "model-00001-of-00002.safetensors"), tensors.Take(half).ToList());
        Safetensors.Write(Path.Combine(dir, "model-00002-of-00002.safetensors"), tensors.Skip(half).ToList());
        var map = new JsonObject();
        for (int i = 0; i < tensors.Count; i++) map[tensors[i].Key] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        using var a = Import(single);
        using var b = Import(dir);
        var ids = tensor(new long[] { 40, 41, 50 }).unsqueeze(0);
        Assert.True(Tensors.Same(a.forward(ids, null), b.forward(ids, null)));
    }

    [Fact]
    public void Missing_and_unmatched_tensors_are_errors_that_name_them()
    {
        var tensors = ReferenceTensors().Where(kv => kv.Key != "transformer.h.1.mlp.c_fc.bias").ToList();
        tensors.Add(KeyValuePair.Create("transformer.h.1.mlp.gate.weight", zeros(H)));
        var dir = WriteCheckpoint("bad", tensors);
        var error = Assert.Throws<InvalidDataException>(() => Import(dir));
        Assert.Contains("Missing: h.1.mlp.c_fc.bias", error.Message);
        Assert.Contains("Unmatched: h.1.mlp.gate.weight", error.Message);
    }

    [Theory]
    [InlineData("t5")]
    [InlineData("xlnet")]
    public void Another_familys_checkpoint_is_refused_naming_both_model_types(string family)
    {
        var error = Assert.Throws<InvalidDataException>(() => HfGpt2.ReadConfig(WriteCheckpoint(family, modelType: family), Special));
        Assert.Contains($"model_type is '{family}', expected 'gpt2'", error.Message);
    }
}
