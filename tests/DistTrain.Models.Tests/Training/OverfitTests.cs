using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Training;

/// <summary>Every objective drives its loss on one fixed batch down by at least 10× within a bounded number of Adam steps.</summary>
public sealed class OverfitTests(ITestOutputHelper output)
{
    private const int Steps = 150;
    private const double Factor = 10;

    /// <summary>
    /// Adam on one batch until the mean of the last 5 losses is below first/Factor (the window absorbs ELECTRA's sampling
    /// noise). Each step runs in its own dispose scope, as the trainer's does.
    /// </summary>
    private void AssertOverfits(string name, nn.Module model, Func<LossTerms> loss, double lr = 1e-2, int steps = Steps, double factor = Factor)
    {
        model.train();
        var optimizer = optim.Adam(model.parameters(), lr);
        var recent = new Queue<double>();
        double first = double.NaN, smoothed = double.NaN;
        int step = 0;
        for (; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var terms = loss();
            var value = terms.LocalMean();
            double current = value.item<float>();
            if (step == 0) first = current;
            recent.Enqueue(current);
            if (recent.Count > 5) recent.Dequeue();
            smoothed = recent.Average();
            if (recent.Count == 5 && smoothed < first / factor) break;
            value.backward();
            optimizer.step();
        }
        output.WriteLine($"{name}: {first:F4} -> {smoothed:F4} (mean of last 5) in {step} steps");
        Assert.True(smoothed < first / factor, $"{name}: loss went {first} -> {smoothed} (mean of last 5) in {steps} steps");
    }

    private static (Tensor Masked, Tensor Labels) MaskEveryThird(Tensor ids)
    {
        var positions = arange(ids.shape[1]).remainder(3).eq(1).unsqueeze(0).expand_as(ids);
        return (ids.masked_fill(positions, Tiny.Mask), ids.masked_fill(positions.logical_not(), -100));
    }

    /// <summary>Segment A for the first half, B for the second: (4, 12).</summary>
    private static Tensor Segments() => cat([zeros(4, 6, ScalarType.Int64), ones(4, 6, ScalarType.Int64)], 1);

    [Fact]
    public void Bert_mlm_and_nsp()
    {
        Tiny.Seed();
        using var bert = (EncoderForPreTraining)ModelFactory.Create(Tiny.Bert());
        var (masked, labels) = MaskEveryThird(Tiny.Ids(4, 12));
        var pair = tensor(new long[] { 0, 1, 1, 0 });
        var segments = Segments();
        AssertOverfits("BERT MLM+NSP", bert, () => bert.Loss(masked, null, segments, labels, pair));
    }

    [Fact]
    public void Roberta_mlm()
    {
        Tiny.Seed();
        using var roberta = (EncoderForPreTraining)ModelFactory.Create(Tiny.Roberta());
        var (masked, labels) = MaskEveryThird(Tiny.Ids(4, 12));
        AssertOverfits("RoBERTa MLM", roberta, () => roberta.Loss(masked, null, null, labels, null));
    }

    [Fact]
    public void Albert_mlm_and_sop()
    {
        Tiny.Seed();
        using var albert = (EncoderForPreTraining)ModelFactory.Create(Tiny.Albert());
        var (masked, labels) = MaskEveryThird(Tiny.Ids(4, 12));
        var order = tensor(new long[] { 1, 0, 1, 0 });
        var segments = Segments();
        AssertOverfits("ALBERT MLM+SOP", albert, () => albert.Loss(masked, null, segments, labels, order));
    }

    [Fact]
    public void Electra_mlm_plus_lambda_rtd()
    {
        Tiny.Seed();
        using var electra = new ElectraForPreTraining(Tiny.Electra());
        var (masked, labels) = MaskEveryThird(Tiny.Ids(4, 12));
        var rng = new Generator(11);
        // Replacements are re-sampled every step, so the RTD targets move until the generator has memorised the batch:
        // this objective gets a larger step budget (it needs 60–100 steps across seeds 1–3 and 1234).
        AssertOverfits("ELECTRA MLM+50·RTD", electra, () => electra.Loss(masked, null, null, labels, rng), lr: 2e-2, steps: 300);
    }

    [Fact]
    public void Gpt_next_word_prediction_with_padding()
    {
        Tiny.Seed();
        using var gpt = new GptLanguageModel(Tiny.Gpt());
        var ids = Tiny.Ids(4, 12);
        var mask = ones(4, 12, ScalarType.Int64);
        mask[0, TensorIndex.Slice(8)] = tensor(0L);
        AssertOverfits("GPT CLM", gpt, () => gpt.Loss(ids, mask));
    }

    [Fact]
    public void Instruction_sft()
    {
        Tiny.Seed();
        using var gpt = new GptLanguageModel(Tiny.Gpt());
        var ids = Tiny.Ids(4, 12);
        var answer = cat([zeros(4, 6, ScalarType.Int64), ones(4, 6, ScalarType.Int64)], 1);
        AssertOverfits("SFT", gpt, () => LanguageModelLosses.InstructionSft(gpt.forward(ids, null), ids, answer));
    }

    [Fact]
    public void Sequence_classification_on_an_encoder()
    {
        Tiny.Seed();
        using var classifier = new SequenceClassifier(ModelFactory.CreateBackbone(Tiny.Bert()), 3);
        var ids = Tiny.Ids(6, 10);
        var labels = tensor(new long[] { 0, 1, 2, 2, 1, 0 });
        AssertOverfits("sequence classification", classifier, () => ClassificationLosses.Sequence(classifier.forward(ids, null, null), labels), lr: 3e-3);
    }

    [Fact]
    public void Token_classification_on_an_encoder()
    {
        Tiny.Seed();
        using var tagger = new TokenClassifier(ModelFactory.CreateBackbone(Tiny.Bert()), 4);
        var ids = Tiny.Ids(4, 10);
        var labels = randint(0, 4, [4, 10], ScalarType.Int64);
        labels[TensorIndex.Colon, 0] = tensor(-100L);                                   // [CLS] carries no tag
        AssertOverfits("token classification", tagger, () => ClassificationLosses.Token(tagger.forward(ids, null, null), labels));
    }

    [Fact]
    public void Reward_model_bradley_terry_on_a_decoder()
    {
        Tiny.Seed();
        using var reward = new RewardModel(ModelFactory.CreateBackbone(Tiny.Gpt()));
        var chosen = Tiny.Ids(4, 8);
        var rejected = Tiny.Ids(4, 8);
        AssertOverfits("reward (Bradley–Terry)", reward, () => PreferenceLosses.BradleyTerry(reward.forward(chosen, null, null), reward.forward(rejected, null, null)), lr: 3e-3);
    }

    [Fact]
    public void Dpo_against_a_frozen_reference()
    {
        Tiny.Seed();
        using var policy = new GptLanguageModel(Tiny.Gpt());
        using var reference = new GptLanguageModel(Tiny.Gpt());
        ModelFactory.LoadBackbone(reference.Backbone, policy.Backbone);
        reference.eval();
        var (chosen, rejected, response) = Losses.LossTests.PreferenceBatch();
        Tensor refChosen, refRejected;
        using (no_grad())
        {
            refChosen = LanguageModelLosses.SequenceLogProbs(reference.forward(chosen, null), chosen, response).MoveToOuterDisposeScope();
            refRejected = LanguageModelLosses.SequenceLogProbs(reference.forward(rejected, null), rejected, response).MoveToOuterDisposeScope();
        }
        AssertOverfits("DPO", policy, () => PreferenceLosses.Dpo(
            LanguageModelLosses.SequenceLogProbs(policy.forward(chosen, null), chosen, response),
            LanguageModelLosses.SequenceLogProbs(policy.forward(rejected, null), rejected, response),
            refChosen, refRejected, beta: 0.5), lr: 3e-3);
    }

    [Fact]
    public void Knowledge_distillation_from_a_teacher()
    {
        Tiny.Seed();
        using var student = new GptLanguageModel(Tiny.Gpt());
        var ids = Tiny.Ids(4, 10);
        var teacher = randn(4, 10, Tiny.Vocab) * 4;                                      // a confident teacher
        var labels = teacher.argmax(-1);
        AssertOverfits("KD (T=2, α=0.5)", student, () => DistillationLoss.Compute(student.forward(ids, null), new TeacherSignal.FullLogits(teacher), labels));
    }

    [Fact]
    public void Xlnet_permutation_lm()
    {
        Tiny.Seed();
        var config = new XLNetConfig { VocabSize = Tiny.Vocab, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, Dropout = 0, AttentionDropout = 0 };
        using var xlnet = (XLNetLanguageModel)ModelFactory.Create(config);
        var ids = Tiny.Ids(4, 12);
        // One random order per row; the last 1/K (K = 4: 3 of 12) of each order are the targets.
        var ranks = stack(Enumerable.Range(0, 4).Select(_ => randperm(12).argsort()).ToArray());     // (4, 12)
        var labels = ids.masked_fill(ranks.lt(12 - 12 / 4), -100);
        AssertOverfits("XLNet PLM", xlnet, () => xlnet.Loss(ids, ranks, null, labels));
    }

    private static T5Config TinyT5() => new()
    {
        VocabSize = Tiny.Vocab, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, RelativeBuckets = 8, RelativeMaxDistance = 16,
        Dropout = 0, AttentionDropout = 0,
    };

    [Fact]
    public void T5_span_corruption()
    {
        Tiny.Seed();
        using var t5 = new T5Model(TinyT5());
        // Inputs with two sentinel ids (30, 31) standing in for dropped spans; targets: sentinel, span, sentinel, span, eos (2).
        var ids = cat([Tiny.Ids(4, 3), full(4, 1, 30L), Tiny.Ids(4, 4), full(4, 1, 31L), Tiny.Ids(4, 2)], 1);     // (4, 11)
        var labels = cat([full(4, 1, 30L), Tiny.Ids(4, 3), full(4, 1, 31L), Tiny.Ids(4, 2), full(4, 1, 2L)], 1);  // (4, 8)
        var decoder = cat([zeros(4, 1, ScalarType.Int64), labels.narrow(1, 0, 7)], 1);                          // shifted right
        AssertOverfits("T5 span corruption", t5, () => t5.Loss(ids, null, decoder, labels));
    }

    [Fact]
    public void T5_text_to_text_classification()
    {
        Tiny.Seed();
        using var classifier = new T5TextClassifier(new T5Model(TinyT5()), [[20, 2], [21, 22, 2], [23, 2]]);
        var ids = Tiny.Ids(6, 8);
        var labels = tensor(new long[] { 0, 1, 2, 2, 1, 0 });
        // Past 10×, so that ranking the label words by log-likelihood (the prediction) is right on every row too.
        AssertOverfits("T5 text-to-text", classifier, () => classifier.Loss(ids, null, labels), lr: 3e-3, factor: 50);
        classifier.eval();
        Assert.Equal(labels.data<long>().ToArray(), classifier.Classify(ids, null).argmax(-1).data<long>().ToArray());
    }
}
