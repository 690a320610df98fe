using DistTrain.Contracts.Specs;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// <c>outputs.export: hf</c> on classifiers: a GPT sequence classifier that pools the last token (fine-tuned or
/// distilled) exports as GPT2ForSequenceClassification; heads of another function are refused with the reason.
/// </summary>
public sealed class HfClassifierExportTests
{
    private const string Spec = """
        name: hf-classifier
        seed: 3
        tokenizer: {kind: files, path: tok}
        stages:
          - name: cls
            kind: finetune
            objective: {kind: classification, task: sequence}
            model: {family: gpt, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 32}
            data: {path: genre, seq_len: 32}
            train: {steps: 2}
            outputs: {export: hf}
        """;

    [Theory]
    [InlineData("task: sequence}", null)]
    [InlineData("task: sequence, pooling: last}", null)]
    [InlineData("task: sequence, pooling: mean}", "a sequence classifier pooling the last token")]
    [InlineData("task: token}", "not a token classifier")]
    public void The_validator_accepts_last_token_sequence_classifiers_only(string objective, string? error)
    {
        var result = JobSpecs.Load(Spec.Replace("task: sequence}", objective));
        if (error is null) Assert.True(result.Ok, string.Join("\n", result.Errors));
        else Assert.Contains(result.Errors, e => e.ToString().Contains("outputs.export") && e.ToString().Contains(error));
    }

    [Fact]
    public void A_classifier_that_exports_is_built_without_a_head_bias_and_one_that_does_not_keeps_it()
    {
        var job = JobSpecs.Load(Spec).Spec!;
        var tokenizer = DistTrain.Data.Tokenization.Gpt2TextTokenizer.Shared;
        foreach (var (stage, bias) in new[] { (job.Stages[0], false), (job.Stages[0] with { Outputs = job.Stages[0].Outputs with { Export = null } }, true) })
        {
            using var model = (DistTrain.Models.SequenceClassifier)DistTrain.Training.Pipeline.ObjectiveFactory.BuildModule(job, stage, tokenizer, ["a", "b"]);
            Assert.Equal(bias, model.Head.Classifier.bias is not null);
        }
    }
}
