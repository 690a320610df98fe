using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>The xlnet and t5 families and their objectives (plm, span_corruption): defaults, parsing, and errors at their paths.</summary>
public sealed class XLNetT5SpecTests
{
    private static string Defaults(string family) => $$"""
        defaults:
          model: {family: {{family}}, layers: 2, hidden: 64, heads: 2, max_len: 64, vocab_size: 1000}
          data: {corpus: brown, seq_len: 64}
          train: {steps: 10, batch_size: 8}
        """;

    private static string Pre(string family, string body = "") =>
        SpecText.Job($"  - {{name: pre, kind: pretrain{(body.Length > 0 ? ", " + body : "")}}}\n", Defaults(family));

    [Fact]
    public void Each_family_pretrains_with_its_own_objective_by_default()
    {
        var xlnet = JobSpecs.Load(Pre("xlnet"));
        Assert.True(xlnet.Ok, SpecText.Describe(xlnet.Errors));
        Assert.Equal(ModelFamily.Xlnet, xlnet.Spec!.Stages[0].Model.Family);
        Assert.Equal(new PlmSpec(K: 6), xlnet.Spec.Stages[0].Objective);

        var t5 = JobSpecs.Load(Pre("t5"));
        Assert.True(t5.Ok, SpecText.Describe(t5.Errors));
        Assert.Equal(new SpanCorruptionSpec(NoiseDensity: 0.15, MeanSpan: 3), t5.Spec!.Stages[0].Objective);
    }

    [Fact]
    public void Objective_knobs_are_read()
    {
        var xlnet = JobSpecs.Load(Pre("xlnet", "objective: {kind: plm, k: 7}"));
        Assert.Equal(new PlmSpec(7), xlnet.Spec!.Stages[0].Objective);
        var t5 = JobSpecs.Load(Pre("t5", "objective: {kind: span_corruption, noise_density: 0.3, mean_span: 8}"));
        Assert.Equal(new SpanCorruptionSpec(0.3, 8), t5.Spec!.Stages[0].Objective);
    }

    [Fact]
    public void A_whole_lifecycle_with_both_families_validates()
    {
        var yaml = SpecText.Job(
            "  - {name: pre, kind: pretrain}\n" +
            "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre}}\n" +
            "  - {name: lab, kind: label, inputs: {teacher: ft}}\n" +
            "  - {name: st, kind: distill, model: {family: xlnet, layers: 1, hidden: 32, heads: 2, max_len: 64, vocab_size: 1000}, inputs: {teacher: ft, labels: lab}}\n" +
            "  - {name: ev, kind: evaluate, inputs: {init: st, teacher: ft}}\n" +
            "  - {name: long, kind: evaluate, inputs: {init: pre}, data: {seq_len: 128}, outputs: {metrics: [perplexity]}}\n",
            Defaults("t5"));
        var result = JobSpecs.Load(yaml);
        Assert.True(result.Ok, SpecText.Describe(result.Errors));
    }

    [Fact]
    public void Relative_families_may_read_beyond_max_len_and_absolute_ones_may_not()
    {
        Assert.True(JobSpecs.Load(Pre("xlnet", "data: {seq_len: 128}")).Ok);
        Assert.True(JobSpecs.Load(Pre("t5", "data: {seq_len: 128}")).Ok);
        var bert = JobSpecs.Load(Pre("bert", "data: {seq_len: 128}"));
        Assert.Contains(bert.Errors, e => e.Path == "stages[0].data.seq_len" && e.Message.Contains("exceeds model.max_len"));
    }

    [Fact]
    public void Relative_families_read_at_most_MaxSeqLen_tokens()
    {
        var atLimit = JobSpecs.Load(Pre("xlnet", $"data: {{seq_len: {SpecLimits.MaxSeqLen}}}"));
        Assert.True(atLimit.Ok, SpecText.Describe(atLimit.Errors));
        Assert.Equal(SpecLimits.MaxSeqLen, atLimit.Spec!.Stages[0].Data.SeqLen);
        var over = JobSpecs.Load(Pre("xlnet", $"data: {{seq_len: {SpecLimits.MaxSeqLen + 1}}}"));
        Assert.Equal(["stages[0].data.seq_len"], over.Errors.Select(e => e.Path));
        // Absolute families stop at max_len, which is itself bounded by the same limit.
        Assert.Equal(SpecLimits.MaxSeqLen, SpecLimits.MaxLen);
        var absolute = JobSpecs.Load(Pre("gpt", $"model: {{max_len: {SpecLimits.MaxSeqLen + 1}}}, data: {{seq_len: 64}}"));
        Assert.Contains(absolute.Errors, e => e.Path == "stages[0].model.max_len");
    }

    public static TheoryData<string, string, string, string> Cases => new()
    {
        { "plm on bert", Pre("bert", "objective: plm"), "stages[0].objective", "plm needs the xlnet family, not bert" },
        { "span corruption on gpt", Pre("gpt", "objective: span_corruption"), "stages[0].objective", "span_corruption needs the t5 family, not gpt" },
        { "mlm on xlnet", Pre("xlnet", "objective: mlm"), "stages[0].objective", "mlm does not fit xlnet; it pre-trains with plm" },
        { "clm on t5", Pre("t5", "objective: clm"), "stages[0].objective", "clm does not fit t5; it pre-trains with span_corruption" },
        { "k below 2", Pre("xlnet", "objective: {kind: plm, k: 1}"), "stages[0].objective.k", "must be >= 2" },
        { "k not an integer", Pre("xlnet", "objective: {kind: plm, k: six}"), "stages[0].objective.k", "must be an integer" },
        { "mlm key on plm", Pre("xlnet", "objective: {kind: plm, mask_prob: 0.2}"), "stages[0].objective.mask_prob", "unknown key for objective 'plm'" },
        { "noise density 1", Pre("t5", "objective: {kind: span_corruption, noise_density: 1}"), "stages[0].objective.noise_density", "must be > 0 and < 1" },
        { "mean span below 1", Pre("t5", "objective: {kind: span_corruption, mean_span: 0.5}"), "stages[0].objective.mean_span", "must be >= 1" },
        { "more spans than sentinels", Pre("t5", "data: {seq_len: 1024}"), "stages[0].data.seq_len", "1024 tokens give 51 corrupted spans; there are 32 sentinels" },
        { "pos on t5", SpecText.Job("  - {name: pre, kind: pretrain}\n  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: pos}}\n", Defaults("t5")),
            "stages[1].objective.task", "t5 classifies text-to-text" },
        { "sft on xlnet", SpecText.Job("  - {name: pre, kind: pretrain}\n  - {name: s, kind: sft, inputs: {init: pre}}\n", Defaults("xlnet")), "stages[1].objective", "sft needs the gpt family, not xlnet" },
        { "xlnet seq_len of 2^31-1", Pre("xlnet", "data: {seq_len: 2147483647}"), "stages[0].data.seq_len", "2147483647 exceeds the limit of 131072 tokens" },
        { "t5 seq_len of 2^31-1", Pre("t5", "data: {seq_len: 2147483647}"), "stages[0].data.seq_len", "2147483647 exceeds the limit of 131072 tokens" },
        { "t5 seq_len one over the limit", Pre("t5", "data: {seq_len: 131073}"), "stages[0].data.seq_len", "131073 exceeds the limit of 131072 tokens" },
        { "t5 family misspelt", Pre("t-5"), "defaults.model.family", "must be one of bert, roberta, albert, electra, gpt, xlnet, t5" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bad_xlnet_and_t5_specs_are_reported_at_their_path(string name, string yaml, string path, string fragment)
    {
        var result = JobSpecs.Load(yaml);
        Assert.Null(result.Spec);
        Assert.True(result.Errors.Any(e => e.Path == path && e.Message.Contains(fragment, StringComparison.Ordinal)),
            $"{name}: expected '{path}: …{fragment}…' in\n{SpecText.Describe(result.Errors)}");
    }
}
