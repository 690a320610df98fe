using System.Text.Json.Nodes;
using DistTrain.Models.Interop;
using static TorchSharp.torch;
using static DistTrain.Models.Tests.Interop.HfGpt2Tests;

namespace DistTrain.Models.Tests.Interop;

/// <summary>
/// GPT2ForSequenceClassification in Hugging Face layout: the test writes a reference checkpoint (GPT-2's tensors plus
/// <c>score.weight</c>, no bias, pad_token_id), imports it, and checks the logits against the reference's function
/// computed by hand (last non-pad token, bias-free score), and that export → import → export is bit-exact.
/// </summary>
public sealed class HfGpt2ClassifierTests : IDisposable
{
    private const int C = 3, Pad = 19;
    private static readonly string[] Labels = ["news", "humor", "romance"];
    private readonly string root = Directory.CreateTempSubdirectory("hf-gpt2-cls-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private string WriteReference(string name, bool withBias = false)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        var tensors = ReferenceTensors();
        tensors.Add(KeyValuePair.Create("score.weight", randn(C, H) * 0.3));
        if (withBias) tensors.Add(KeyValuePair.Create("score.bias", randn(C)));
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(dir, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("GPT2ForSequenceClassification"), ["model_type"] = "gpt2", ["vocab_size"] = V,
            ["n_positions"] = P, ["n_embd"] = H, ["n_layer"] = L, ["n_head"] = A, ["activation_function"] = "gelu_new",
            ["layer_norm_epsilon"] = 1e-5, ["pad_token_id"] = Pad, ["eos_token_id"] = Pad,
            ["id2label"] = new JsonObject { ["0"] = Labels[0], ["1"] = Labels[1], ["2"] = Labels[2] },
        }.ToJsonString());
        return dir;
    }

    [Fact]
    public void Logits_equal_the_references_last_non_pad_token_scored_without_bias()
    {
        var dir = WriteReference("ref");
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors")).ToDictionary(kv => kv.Key.Replace("transformer.", ""), kv => kv.Value);
        using var model = HfGpt2Classifier.Load(dir, Special);
        model.eval();
        Assert.Equal(Labels, HfGpt2Classifier.ReadConfig(dir, Special).Labels);
        using var _ = no_grad();

        // Two right-padded rows of GPT-2 ids (lengths 3 and 5). The reference pools the largest position whose id is
        // not pad_token_id; DistTrain sees 38 + id and an attention mask that is 1 on those positions.
        var hfIds = tensor(new long[,] { { 3, 17, 0, Pad, Pad }, { 5, 1, 2, 11, 7 } });                // (B, T)
        var mask = hfIds.ne(Pad).to(ScalarType.Int64);                                                   // (B, T)
        var logits = model.forward((hfIds + Special).masked_fill(mask.eq(0), 0), mask, null);           // (B, C)
        for (int b = 0; b < 2; b++)
        {
            long length = mask[b].sum().item<long>();
            var x = w["wte.weight"].index_select(0, hfIds[b].narrow(0, 0, length)) + w["wpe.weight"].narrow(0, 0, length); // (T', H)
            for (int i = 0; i < L; i++) x = HandBlock(w, i, x);
            var last = HandNorm(x, w["ln_f.weight"], w["ln_f.bias"])[length - 1];                       // (H)
            var expected = w["score.weight"].matmul(last);                                               // (C)
            Assert.True(logits[b].allclose(expected, 0, 1e-5), $"row {b}: max diff {(logits[b] - expected).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void Export_keeps_the_special_rows_and_round_trips_bit_for_bit()
    {
        var source = WriteReference("in");
        using var model = HfGpt2Classifier.Load(source, Special);
        string first = Path.Combine(root, "first"), second = Path.Combine(root, "second");
        HfGpt2Classifier.Export(model, Labels, first, Special);
        using (var again = HfGpt2Classifier.Load(first, Special))
            HfGpt2Classifier.Export(again, Labels, second, Special);

        var reference = Safetensors.Read(Path.Combine(source, "model.safetensors"));
        var a = Safetensors.Read(Path.Combine(first, "model.safetensors"));
        var b = Safetensors.Read(Path.Combine(second, "model.safetensors"));
        Assert.Equal(reference.Keys.Order(), a.Keys.Order());
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a)
        {
            Assert.True(t.bytes.SequenceEqual(b[name].bytes), $"{name} changed in export → import → export");
            // The reference's tensors come back unchanged; wte gains DistTrain's 38 special rows after its own V.
            var expected = name == "transformer.wte.weight" ? t.narrow(0, 0, V).contiguous() : t;
            Assert.True(expected.bytes.SequenceEqual(reference[name].bytes), $"{name} differs from the reference");
        }
        Assert.Equal(new long[] { V + Special, H }, a["transformer.wte.weight"].shape);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(first, "config.json")))!;
        Assert.Equal(V, (int)config[HfGpt2Classifier.SpecialIdsFrom]!);
        Assert.Equal(V, (int)config["pad_token_id"]!);
        Assert.Equal("romance", (string)config["id2label"]!["2"]!);
        Assert.Equal(C, (int)config["num_labels"]!);
    }

    [Fact]
    public void A_score_bias_is_refused_by_name_a_classifier_is_not_read_as_a_language_model_and_heads_of_another_function_are_not_exported()
    {
        var error = Assert.Throws<InvalidDataException>(() => HfGpt2Classifier.Load(WriteReference("bias", withBias: true), Special));
        Assert.Contains("score.bias is unmatched", error.Message);

        Assert.Contains("not a GPT-2 language model", Assert.Throws<InvalidDataException>(() => HfGpt2.ReadConfig(WriteReference("lm"), Special)).Message);

        var (config, _, _) = HfGpt2Classifier.ReadConfig(WriteReference("shape"), Special);
        using (var withBias = new SequenceClassifier(new GptLanguageModel(config).Backbone, C, PoolingMode.Last))
            Assert.Contains("has no bias", Assert.Throws<InvalidOperationException>(() => HfGpt2Classifier.Export(withBias, Labels, Path.Combine(root, "x"), Special)).Message);
        using (var mean = new SequenceClassifier(new GptLanguageModel(config).Backbone, C, PoolingMode.Mean, headBias: false))
            Assert.Contains("scores the last non-pad token", Assert.Throws<InvalidOperationException>(() => HfGpt2Classifier.Export(mean, Labels, Path.Combine(root, "y"), Special)).Message);
    }
}
