using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>Well-formed specs: examples, defaults, inheritance and the values the parser fills in.</summary>
public sealed class SpecLoadTests
{
    private static JobSpec LoadOk(string yaml)
    {
        var result = JobSpecs.Load(yaml);
        Assert.True(result.Ok, SpecText.Describe(result.Errors));
        return result.Spec!;
    }

    [Theory]
    [InlineData("brown-pipeline.yaml")]
    [InlineData("assistant-pipeline.yaml")]
    public void Examples_validate(string file)
    {
        var result = JobSpecs.LoadFile(SpecText.ExamplePath(file));
        Assert.True(result.Ok, SpecText.Describe(result.Errors));
    }

    [Fact]
    public void Reference_doc_example_validates()
    {
        var doc = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "spec-reference.md"));
        var example = doc[doc.IndexOf("## Example", StringComparison.Ordinal)..];
        int start = example.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        var yaml = example[start..example.IndexOf("```", start, StringComparison.Ordinal)];
        var result = JobSpecs.Load(yaml);
        Assert.True(result.Ok, SpecText.Describe(result.Errors));
        Assert.Equal(5, result.Spec!.Stages.Count);
    }

    [Fact]
    public void Brown_example_means_what_its_comments_say()
    {
        var spec = JobSpecs.LoadFile(SpecText.ExamplePath("brown-pipeline.yaml")).Spec!;
        var pre = spec.Stage("pretrain")!;
        var teacher = spec.Stage("teacher")!;
        var label = spec.Stage("label")!;
        var student = spec.Stage("student")!;
        var eval = spec.Stage("evaluate")!;

        Assert.Equal((2, 2), (pre.Distributed.MinWorkers, pre.Distributed.MaxWorkers));
        Assert.Equal(ModelFamily.Roberta, pre.Model.Family);
        Assert.IsType<MlmSpec>(pre.Objective);
        Assert.Equal(pre.Model, teacher.Model);
        Assert.Equal(teacher.Model, label.Model);
        Assert.Equal(new DataSpec(new BuiltinCorpus(CorpusName.Brown), DataSplit.All, 64), label.Data);
        Assert.Equal(new StageOutput("label"), student.Data.Source);
        Assert.True(student.Model.ApproxParameters() <= 0.4 * teacher.Model.ApproxParameters());
        Assert.Equal(student.Model, eval.Model);
        Assert.Equal(new[] { Metric.Accuracy, Metric.MacroF1, Metric.Agreement }, eval.Outputs.Metrics!);
        Assert.Equal(new TrainSpec(400, 32, 1, 1e-3, 40, LrSchedule.Cosine, 0.01, 1.0, 100, 100), teacher.Train);
    }

    [Fact]
    public void Stage_keys_override_defaults_one_key_at_a_time()
    {
        var spec = LoadOk(SpecText.Job("""
              - {name: a, kind: pretrain, train: {lr: 0.001}, distributed: {wire: bf16}}
              - {name: b, kind: pretrain, data: {path: corpora/own.txt, seq_len: 32}}
            """, SpecText.Defaults + "\n  distributed: {workers: 2, aggregation: ring}"));
        var a = spec.Stages[0];
        var b = spec.Stages[1];
        Assert.Equal(new TrainSpec(Steps: 10, BatchSize: 8, Lr: 0.001), a.Train);
        Assert.Equal(new DistributedSpec(2, 2, Aggregation.Ring, WireFormat.Bf16), a.Distributed);
        Assert.Equal(new TrainSpec(Steps: 10, BatchSize: 8), b.Train);
        // A stage's own source replaces the default corpus instead of clashing with it.
        Assert.Equal(new DataSpec(new CorpusFile("corpora/own.txt"), DataSplit.Train, 32), b.Data);
        Assert.Equal(new DataSpec(new BuiltinCorpus(CorpusName.Brown), DataSplit.Train, 64), a.Data);
    }

    [Fact]
    public void Init_passes_its_model_down_and_the_stage_may_change_dropout()
    {
        var spec = LoadOk(SpecText.Job("""
              - {name: pre, kind: pretrain, model: {layers: 3}}
              - {name: ft, kind: finetune, inputs: {init: pre}, model: {dropout: 0.2}, objective: {kind: classification, task: genre}}
            """));
        Assert.Equal(3, spec.Stages[0].Model.Layers);
        Assert.Equal(spec.Stages[0].Model with { Dropout = 0.2 }, spec.Stages[1].Model);
    }

    [Fact]
    public void Parser_fills_documented_defaults()
    {
        var spec = LoadOk("""
            name: t
            stages:
              - name: p
                kind: pretrain
                model: {family: albert, layers: 2, hidden: 64, heads: 2, max_len: 32, vocab_size: 1000, embedding_size: 16}
                data: {corpus: brown}
                train: {steps: 5}
            """);
        var s = spec.Stages[0];
        Assert.Equal((0, 0), (spec.Seed, spec.Priority));
        Assert.Equal(new MlmSpec(0.15, SentenceTask.Sop), s.Objective);
        Assert.Equal(256, s.Model.Ffn);
        Assert.Equal(16, s.Model.EmbeddingWidth);
        Assert.Equal(16, (s.Model with { EmbeddingSize = null }).EmbeddingWidth); // albert factorises by default (64 / 4)
        Assert.True(s.Model.SameShapeAs(s.Model with { EmbeddingSize = null, Dropout = 0.3 }));
        Assert.Equal(0.1, s.Model.Dropout);
        Assert.Equal(32, s.Data.SeqLen);
        Assert.Equal(new DistributedSpec(), s.Distributed);
        Assert.Equal(new OutputsSpec(), s.Outputs);
        Assert.Empty(s.Needs);
    }

    [Fact]
    public void Norm_and_train_examples_parse_and_default_by_family()
    {
        var spec = LoadOk("""
            name: t
            stages:
              - name: p
                kind: pretrain
                model: {family: roberta, layers: 2, hidden: 64, heads: 2, max_len: 32, vocab_size: 1000, norm: pre}
                data: {corpus: brown, train_examples: 500}
                train: {steps: 5}
            """);
        var s = spec.Stages[0];
        Assert.Equal(LayerNormPosition.Pre, s.Model.NormPosition);
        Assert.Equal(LayerNormPosition.Post, (s.Model with { Norm = null }).NormPosition);                              // the BERT line is post-LN
        Assert.Equal(LayerNormPosition.Pre, (s.Model with { Norm = null, Family = ModelFamily.Gpt }).NormPosition);    // GPT-2 is pre-LN
        Assert.False(s.Model.SameShapeAs(s.Model with { Norm = null }));
        Assert.True(s.Model.SameShapeAs(s.Model with { Norm = LayerNormPosition.Pre, Dropout = 0.3 }));
        Assert.Equal(500, s.Data.TrainExamples);
        Assert.Null(s.Data.MaxExamples);
    }

    [Fact]
    public void Freeze_backbone_parses_on_finetune_and_reward_stages_and_defaults_to_off()
    {
        var probe = LoadOk(SpecText.Job(SpecText.TwoStages.Replace("task: genre}", "task: genre}, train: {steps: 5, freeze_backbone: true}") +
                                        "  - {name: rm, kind: reward, model: {family: gpt, layers: 1, hidden: 32, heads: 2, max_len: 32, vocab_size: 1000}, train: {steps: 5, freeze_backbone: true}}\n"));
        Assert.False(probe.Stages[0].Train.FreezeBackbone);
        Assert.True(probe.Stages[1].Train.FreezeBackbone);
        Assert.True(probe.Stages[2].Train.FreezeBackbone);
        Assert.False(LoadOk(SpecText.Job(SpecText.TwoStages)).Stages[1].Train.FreezeBackbone);
    }

    [Fact]
    public void Classification_pooling_parses_and_defaults_to_the_family()
    {
        var spec = LoadOk(SpecText.Job(SpecText.TwoStages.Replace("task: genre}", "task: genre, pooling: mean}")));
        Assert.Equal(new ClassificationSpec(ClassificationTask.Genre, SequencePooling.Mean), spec.Stages[1].Objective);
        Assert.Equal(new ClassificationSpec(ClassificationTask.Genre), LoadOk(SpecText.Job(SpecText.TwoStages)).Stages[1].Objective);
    }

    [Fact]
    public void Inputs_labels_is_shorthand_for_data_from()
    {
        var spec = LoadOk(SpecText.Job(SpecText.TwoStages + """
              - {name: lab, kind: label, inputs: {teacher: ft}}
              - {name: st, kind: distill, inputs: {labels: lab}}
            """));
        Assert.Equal(new StageOutput("lab"), spec.Stage("st")!.Data.Source);
        Assert.Equal(DataSplit.All, spec.Stage("lab")!.Data.Split);
        Assert.Equal(new[] { "lab" }, spec.Stage("st")!.Dependencies());
    }

    [Fact]
    public void Electra_generator_defaults_to_the_discriminator_depth()
    {
        var spec = LoadOk("""
            name: e
            stages:
              - name: p
                kind: pretrain
                model: {family: electra, layers: 4, hidden: 128, heads: 4, max_len: 64, vocab_size: 500, generator: {hidden: 32, heads: 1}}
                data: {corpus: brown}
                train: {steps: 5}
            """);
        Assert.Equal(new GeneratorSpec(4, 32, 1, 128), spec.Stages[0].Model.Generator);
        Assert.IsType<RtdSpec>(spec.Stages[0].Objective);
    }

    [Fact]
    public void Stage_seed_is_stable_and_per_stage()
    {
        var spec = LoadOk(SpecText.Job(SpecText.TwoStages));
        int a = spec.StageSeed(spec.Stages[0]), b = spec.StageSeed(spec.Stages[1]);
        Assert.NotEqual(a, b);
        Assert.Equal(a, LoadOk(SpecText.Job(SpecText.TwoStages)).StageSeed(spec.Stages[0]));
        Assert.Equal(5, spec.StageSeed(spec.Stages[0] with { Train = spec.Stages[0].Train with { Seed = 5 } }));
    }

    [Fact]
    public void Hand_built_specs_validate_like_parsed_ones()
    {
        var parsed = LoadOk(SpecText.Job(SpecText.TwoStages));
        Assert.Empty(SpecValidator.Validate(parsed));
        var broken = parsed with { Stages = [parsed.Stages[0] with { Train = parsed.Stages[0].Train with { Lr = -1 } }, parsed.Stages[1]] };
        Assert.Equal(new[] { new SpecError("stages[0].train.lr", "must be > 0 and <= 1") }, SpecValidator.Validate(broken));
    }

    [Fact]
    public void Missing_file_is_an_error_not_an_exception()
    {
        var result = JobSpecs.LoadFile("/nonexistent/spec.yaml");
        Assert.Equal("$", Assert.Single(result.Errors).Path);
    }
}
