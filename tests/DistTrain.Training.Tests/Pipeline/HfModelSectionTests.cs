using System.Text.Json.Nodes;
using DistTrain.Contracts.Specs;
using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Models.Interop;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// <c>inputs.init: "hf:DIR"</c> without a model section: the stage's model comes from config.json (filled into the spec
/// text where the data root is known, so workers parse the same model), and a written field that contradicts it is an
/// error naming the field before anything trains.
/// </summary>
public sealed class HfModelSectionTests
{
    private const string Spec = """
        name: hf-fill
        seed: 7
        tokenizer: {kind: gpt2}
        stages:
          - name: tune
            kind: pretrain
            objective: clm
            inputs: {init: "hf:models/gpt2-tiny"}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
        """;

    /// <summary>A 2-layer GPT-2 checkpoint whose shape no default gives (ffn 48 ≠ 4·hidden, 24 positions, tanh GELU).</summary>
    private static string WriteGpt2(string root)
    {
        manual_seed(11);
        using var model = new GptLanguageModel(new GptConfig
        {
            VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 2, Heads = 2, IntermediateSize = 48, MaxPositions = 24, Gelu = GeluKind.Tanh,
        });
        var dir = Path.Combine(root, "models", "gpt2-tiny");
        HfGpt2.Export(model, dir, TokenizerSpec.SpecialIds);
        return dir;
    }

    private static SpecResult Load(string yaml, string root) => JobSpecs.Load(yaml, root, checkpoints: HfCheckpointModels.Instance);

    [Fact]
    public void A_stage_without_a_model_section_trains_the_model_config_json_describes()
    {
        using var dir = new TempDir();
        var hf = WriteGpt2(dir.Path);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!;
        int layers = (int)config["n_layer"]!, hidden = (int)config["n_embd"]!, heads = (int)config["n_head"]!, ffn = (int)config["n_inner"]!;
        int positions = (int)config["n_positions"]!, vocab = (int)config["vocab_size"]!;
        Assert.Equal(("gelu_new", 48), ((string)config["activation_function"]!, ffn));   // the checkpoint is what the test meant to write

        var loaded = Load(Spec, dir.Path);
        Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
        var model = loaded.Spec!.Stages[0].Model;
        Assert.Equal(new ModelSpec(ModelFamily.Gpt, layers, hidden, heads, ffn, positions, vocab + TokenizerSpec.SpecialIds, Gelu: GeluForm.Tanh), model);
        // A worker parses the stored text without the data root and gets the same model.
        var worker = JobSpecs.Load(loaded.Yaml!);
        Assert.True(worker.Ok, string.Join("\n", worker.Errors));
        Assert.Equal(model, worker.Spec!.Stages[0].Model);
        Assert.Contains("layers: 2", loaded.Yaml);

        TorchSharp.torch.set_num_threads(1);
        var runs = Path.Combine(dir.Path, "runs");
        new PipelineRunner(runs, "job", CPU, null, dir.Path).Run(loaded.Spec);
        var artifacts = new StageArtifacts(runs, "job", "tune", dir.Path);
        using var trained = (GptLanguageModel)ObjectiveFactory.LoadTrained(loaded.Spec, loaded.Spec.Stages[0], artifacts, CPU);
        // GPT-2's parameters from config.json alone: token (with DistTrain's special rows) and position tables, per block
        // two LayerNorms, qkv and output projections, the MLP; the final LayerNorm; the output layer is tied to the tokens.
        long h = hidden, f = ffn;
        long block = 2 * 2 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
        long expected = (vocab + TokenizerSpec.SpecialIds) * h + positions * h + layers * block + 2 * h;
        long actual = trained.parameters().Sum(p => p.numel());
        Assert.Equal(expected, actual);
        var weights = trained.state_dict();
        Assert.Equal([positions, hidden], weights.Single(kv => kv.Key.EndsWith("embeddings.position.weight")).Value.shape);
        // It started from the checkpoint: two steps at lr 1e-7 move a weight by well under 1e-5.
        var wpe = Safetensors.Read(Path.Combine(hf, "model.safetensors"))["transformer.wpe.weight"];
        Assert.True(weights.Single(kv => kv.Key.EndsWith("embeddings.position.weight")).Value.allclose(wpe, 0, 1e-5), "the stage did not start from the checkpoint");
    }

    [Theory]
    [InlineData("    model: {layers: 3}\n", "stages[0].model.layers", "is 3, but config.json's n_layer is 2")]
    [InlineData("    model: {family: bert}\n", "stages[0].model.family", "is bert, but config.json's model_type gpt2's family is gpt")]
    [InlineData("    model: {gelu: exact}\n", "stages[0].model.gelu", "is exact, but config.json's activation_function is tanh")]
    [InlineData("    model: {max_len: 32}\n", "stages[0].model.max_len", "is 32, but config.json's n_positions is 24")]
    public void A_written_field_that_contradicts_config_json_is_refused_naming_it(string section, string path, string message)
    {
        using var dir = new TempDir();
        WriteGpt2(dir.Path);
        var result = Load(Spec.Replace("    data:", section + "    data:"), dir.Path);
        Assert.False(result.Ok);
        var error = Assert.Single(result.Errors);
        Assert.Equal(path, error.Path);
        Assert.True(error.Message.Contains(message, StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public void Defaults_count_as_written_and_a_fully_written_section_keeps_its_text()
    {
        using var dir = new TempDir();
        WriteGpt2(dir.Path);
        var contradicting = Load(Spec.Replace("stages:", "defaults:\n  model: {hidden: 32}\nstages:"), dir.Path);
        Assert.Contains(contradicting.Errors, e => e.Path == "defaults.model.hidden" && e.Message.Contains("config.json's n_embd is 16"));

        // Everything written and agreeing: the text is stored as given (comments included).
        var written = "# the user's comment\n" + Spec.Replace("    data:", "    model: {family: gpt, layers: 2, hidden: 16, heads: 2, ffn: 48, max_len: 24, gelu: tanh, vocab_size: 50295}\n    data:");
        var same = Load(written, dir.Path);
        Assert.True(same.Ok, string.Join("\n", same.Errors));
        Assert.Equal(written, same.Yaml);
    }

    [Fact]
    public void Without_the_data_root_the_missing_fields_say_where_they_come_from()
    {
        var result = JobSpecs.Load(Spec);
        Assert.Contains(result.Errors, e => e.Path == "stages[0].model" && e.Message.Contains("read from config.json of hf:models/gpt2-tiny, which needs the data root"));
        using var dir = new TempDir();
        var missing = Load(Spec, dir.Path);
        var error = Assert.Single(missing.Errors);
        Assert.Equal(("stages[0].inputs.init", "'models/gpt2-tiny' does not exist under the data root"), (error.Path, error.Message));
    }

    [Fact]
    public void A_roberta_checkpoint_gives_max_len_without_its_position_offset()
    {
        using var dir = new TempDir();
        var hf = Path.Combine(dir.Path, "models", "roberta-tiny");
        manual_seed(13);
        using (var model = ModelFactory.Create(new RobertaConfig
        {
            VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16, PositionOffset = 2,
        }))
            HfBert.Export(model, hf, TokenizerSpec.SpecialIds, null);
        int table = (int)JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!["max_position_embeddings"]!;
        var yaml = Spec.Replace("gpt2-tiny", "roberta-tiny").Replace("objective: clm", "objective: mlm");
        var result = Load(yaml, dir.Path);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        // RoBERTa's positions start at padding_idx + 1 = 2, so its table has two rows more than the positions it reads.
        Assert.Equal(new ModelSpec(ModelFamily.Roberta, 1, 16, 2, 32, table - 2, TokenizerSpec.Gpt2Size, Gelu: GeluForm.Exact), result.Spec!.Stages[0].Model);
        var wrong = Load(yaml.Replace("    data:", "    model: {max_len: 18}\n    data:"), dir.Path);
        Assert.Contains(wrong.Errors, e => e.Path == "stages[0].model.max_len" && e.Message.Contains("config.json's max_position_embeddings − 2 (positions start at padding_idx + 1) is 16"));
    }

    [Fact]
    public void A_t5_checkpoint_gives_its_shape_but_max_len_stays_required()
    {
        using var dir = new TempDir();
        var hf = Path.Combine(dir.Path, "models", "t5-tiny");
        manual_seed(3);
        using (var t5 = new T5Model(new T5Config { VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 40, RelativeBuckets = 8, RelativeMaxDistance = 20 }))
            HfT5.Export(t5, hf, TokenizerSpec.SpecialIds);
        var yaml = Spec.Replace("gpt2-tiny", "t5-tiny").Replace("objective: clm", "objective: span_corruption");
        var result = Load(yaml, dir.Path);
        var error = Assert.Single(result.Errors);
        Assert.Equal("stages[0].model.max_len", error.Path);
        Assert.Contains("t5 has relative positions, so config.json gives no max_len", error.Message);

        var written = Load(yaml.Replace("    data:", "    model: {max_len: 16}\n    data:"), dir.Path);
        Assert.True(written.Ok, string.Join("\n", written.Errors));
        Assert.Equal(new ModelSpec(ModelFamily.T5, 1, 16, 2, 40, 16, TokenizerSpec.Gpt2Size), written.Spec!.Stages[0].Model);
    }
}
