using DistTrain.Contracts.Specs;
using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Models.Interop;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// T5 and XLNet checkpoints in jobs: a pretrain stage starts from the checkpoint (<c>inputs.init: "hf:…"</c>) and
/// exports it back in the same layout (<c>outputs.export: hf</c>), and a finetune stage takes it as its starting point.
/// The spec's max_len is not compared (relative positions: config.json has none); T5's buckets come from config.json.
/// </summary>
public sealed class HfRelativeFamiliesTests
{
    private static string Spec(string family, string objective) => $$"""
        name: hf-{{family}}
        seed: 7
        tokenizer: {kind: gpt2}
        stages:
          - name: lm
            kind: pretrain
            objective: {{objective}}
            inputs: {init: "hf:models/{{family}}-tiny"}
            model: {family: {{family}}, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
            outputs: {export: hf}
          - name: tune
            kind: finetune
            inputs: {init: "hf:models/{{family}}-tiny"}
            model: {family: {{family}}, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            objective: {kind: classification, task: genre}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 1, batch_size: 4, lr: 1.0e-3}
        """;

    /// <summary>A reference-layout checkpoint over GPT-2's vocabulary under root/models/FAMILY-tiny, written by the family's exporter.</summary>
    private static string WriteCheckpoint(string root, string family)
    {
        manual_seed(13);
        var dir = Path.Combine(root, "models", $"{family}-tiny");
        if (family == "t5")
        {
            // Buckets other than the defaults: the stage must take them from config.json.
            using var t5 = new T5Model(new T5Config { VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, RelativeBuckets = 8, RelativeMaxDistance = 20 });
            HfT5.Export(t5, dir, TokenizerSpec.SpecialIds);
        }
        else
        {
            using var xlnet = new XLNetLanguageModel(new XLNetConfig { VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32 });
            HfXLNet.Export(xlnet, dir, TokenizerSpec.SpecialIds);
        }
        return dir;
    }

    [Theory]
    [InlineData("t5", "span_corruption")]
    [InlineData("xlnet", "plm")]
    public void A_stage_starts_from_the_checkpoint_exports_it_back_and_a_finetune_stage_takes_it(string family, string objective)
    {
        using var dir = new TempDir();
        var checkpoint = WriteCheckpoint(dir.Path, family);
        TinySpecs.RunUnder(dir.Path, Spec(family, objective));

        var hf = Path.Combine(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "lm").Directory, HfExport.Folder);
        var before = Safetensors.Read(Path.Combine(checkpoint, "model.safetensors"));
        var after = Safetensors.Read(Path.Combine(hf, "model.safetensors"));
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        // Two steps at lr 1e-7 move a weight by well under 1e-5; a fresh initialisation would differ by ~0.02. XLNet's
        // segment term (r_s_bias, seg_embed) is zero in any export (docs/interop.md), so it is equal here too.
        foreach (var (name, t) in before)
            Assert.True(t.shape.SequenceEqual(after[name].shape) && t.allclose(after[name], 0, 1e-5), $"{name} did not come from the checkpoint");
        if (family == "t5")
        {
            var config = HfT5.ReadConfig(hf, TokenizerSpec.SpecialIds);
            Assert.Equal((8, 20), (config.RelativeBuckets, config.RelativeMaxDistance));
        }
        Assert.True(File.Exists(Path.Combine(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "tune").Directory, "metrics.json")));
    }

    [Theory]
    [InlineData("t5", "span_corruption", "hidden: 16", "hidden: 32", "model.hidden is 32, config.json's d_model is 16")]
    [InlineData("xlnet", "plm", "ffn: 32", "ffn: 64", "model.ffn is 64, config.json's d_inner is 32")]
    public void A_spec_that_contradicts_the_checkpoint_is_an_error_naming_the_field(string family, string objective, string from, string to, string error)
    {
        using var dir = new TempDir();
        WriteCheckpoint(dir.Path, family);
        var e = Record.Exception(() => TinySpecs.RunUnder(dir.Path, Spec(family, objective).Replace(from, to)));
        Assert.NotNull(e);
        Assert.Contains(error, e.ToString());
    }

    [Theory]
    [InlineData("t5", "{kind: classification, task: genre}", "a text-to-text classifier is not exported")]
    [InlineData("xlnet", "{kind: classification, task: genre}", "XLNetLMHeadModel), not a classifier")]
    public void Only_the_pre_training_models_export(string family, string objective, string error)
    {
        var yaml = Spec(family, objective).Replace("kind: pretrain", "kind: finetune");
        var result = JobSpecs.Load(yaml);
        Assert.Contains(result.Errors, e => e.ToString().Contains("outputs.export") && e.ToString().Contains(error));
    }
}
