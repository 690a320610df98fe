using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Losses;

/// <summary>Losses against hand computations and the properties the trainer relies on (sums, counts, ignored targets).</summary>
public sealed class LossTests
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public void Bradley_terry_matches_a_hand_computation()
    {
        var terms = PreferenceLosses.BradleyTerry(tensor(new[] { 1.0, -0.5, 2.0 }), tensor(new[] { 0.0, 0.5, 2.5 }));
        double expected = -Math.Log(Sigmoid(1.0)) - Math.Log(Sigmoid(-1.0)) - Math.Log(Sigmoid(-0.5));   // 0.3133 + 1.3133 + 0.9741
        Assert.Equal(expected, terms.Sum.item<double>(), 12);
        Assert.Equal(3, terms.Count);
        Assert.Equal(1, terms.Metrics["correct"]);
    }

    [Fact]
    public void Dpo_is_exactly_log_2_when_policy_equals_reference()
    {
        Tiny.Seed();
        using var policy = new GptLanguageModel(Tiny.Gpt());
        using var reference = new GptLanguageModel(Tiny.Gpt());
        ModelFactory.LoadBackbone(reference.Backbone, policy.Backbone);
        policy.eval(); reference.eval();
        var (chosen, rejected, response) = PreferenceBatch();
        Tensor LogProbs(GptLanguageModel m, Tensor ids) => LanguageModelLosses.SequenceLogProbs(m.forward(ids, null), ids, response);
        Tensor refChosen, refRejected;
        using (no_grad()) { refChosen = LogProbs(reference, chosen); refRejected = LogProbs(reference, rejected); }
        var terms = PreferenceLosses.Dpo(LogProbs(policy, chosen), LogProbs(policy, rejected), refChosen, refRejected, beta: 0.5);
        Assert.Equal(Math.Log(2), terms.LocalMean().item<float>(), 6);
        Assert.Equal(4, terms.Count);
    }

    [Fact]
    public void Dpo_gradient_raises_chosen_and_lowers_rejected_log_probs_and_leaves_the_reference_alone()
    {
        var pc = tensor(new[] { -3.0, -5.0 }, requires_grad: true);
        var pr = tensor(new[] { -4.0, -2.0 }, requires_grad: true);
        var rc = tensor(new[] { -3.5, -4.0 }, requires_grad: true);
        var rr = tensor(new[] { -3.0, -2.5 }, requires_grad: true);
        var terms = PreferenceLosses.Dpo(pc, pr, rc, rr, beta: 0.1);
        terms.Sum.backward();
        Assert.True(pc.grad!.lt(0).all().item<bool>(), "descent must raise log π(y_w)");
        Assert.True(pr.grad!.gt(0).all().item<bool>(), "descent must lower log π(y_l)");
        Assert.True(rc.grad is null && rr.grad is null, "the reference is frozen");
        // Hand value: z = β·((pc−rc) − (pr−rr)); loss = Σ −log σ(z).
        double z0 = 0.1 * ((-3.0 + 3.5) - (-4.0 + 3.0)), z1 = 0.1 * ((-5.0 + 4.0) - (-2.0 + 2.5));
        Assert.Equal(-Math.Log(Sigmoid(z0)) - Math.Log(Sigmoid(z1)), terms.Sum.item<double>(), 12);
        Assert.Equal(1, terms.Metrics["correct"]);
    }

    [Fact]
    public void A_dpo_step_on_a_model_widens_the_chosen_over_rejected_margin()
    {
        Tiny.Seed();
        using var policy = new GptLanguageModel(Tiny.Gpt());
        policy.eval();
        var (chosen, rejected, response) = PreferenceBatch();
        Tensor Margin()
        {
            using var _ = no_grad();
            return LanguageModelLosses.SequenceLogProbs(policy.forward(chosen, null), chosen, response)
                 - LanguageModelLosses.SequenceLogProbs(policy.forward(rejected, null), rejected, response);
        }
        var before = Margin();
        var frozen = before.clone();   // policy == reference at the start, so the reference margin is the same
        var optimizer = optim.SGD(policy.parameters(), 0.05);
        var pc = LanguageModelLosses.SequenceLogProbs(policy.forward(chosen, null), chosen, response);
        var pr = LanguageModelLosses.SequenceLogProbs(policy.forward(rejected, null), rejected, response);
        PreferenceLosses.Dpo(pc, pr, pc.detach(), pr.detach(), 0.5).LocalMean().backward();
        optimizer.step();
        Assert.True(Margin().gt(frozen).all().item<bool>());
    }

    [Fact]
    public void Sft_ignores_prompt_tokens()
    {
        Tiny.Seed();
        var ids = Tiny.Ids(2, 6);
        var answer = tensor(new long[,] { { 0, 0, 0, 1, 1, 1 }, { 0, 0, 1, 1, 1, 0 } });   // row 1 ends in a pad outside the mask
        var logits = randn(2, 6, Tiny.Vocab, ScalarType.Float64, requires_grad: true);
        var terms = LanguageModelLosses.InstructionSft(logits, ids, answer);
        Assert.Equal(6, terms.Count);
        var grad = torch.autograd.grad([terms.Sum], [logits])[0];
        // logits at t predict token t+1: only t with answer[t+1] = 1 may matter.
        var predictsAnswer = cat([answer.narrow(1, 1, 5), zeros(2, 1, ScalarType.Int64)], 1).to(ScalarType.Bool); // (2, 6)
        Assert.True(grad.abs().sum(-1).masked_select(predictsAnswer.logical_not()).eq(0).all().item<bool>());

        var changed = logits.detach().clone();
        changed.masked_scatter_(predictsAnswer.logical_not().unsqueeze(-1).expand_as(changed), randn_like(changed) * 10);
        Assert.Equal(terms.Sum.item<double>(), LanguageModelLosses.InstructionSft(changed, ids, answer).Sum.item<double>(), 12);
    }

    [Fact]
    public void Mlm_and_clm_return_sums_over_non_ignored_targets()
    {
        var logits = randn(2, 4, 5, ScalarType.Float64);
        var labels = tensor(new long[,] { { -100, 1, -100, 3 }, { 0, -100, -100, -100 } });
        var mlm = LanguageModelLosses.MaskedLm(logits, labels);
        Assert.Equal(3, mlm.Count);
        var logp = logits.log_softmax(-1);
        double expected = -(logp[0, 1, 1].item<double>() + logp[0, 3, 3].item<double>() + logp[1, 0, 0].item<double>());
        Assert.Equal(expected, mlm.Sum.item<double>(), 12);

        var clm = LanguageModelLosses.CausalLm(logits, labels);   // targets are labels[:, 1:]: 1, 3 in row 0; none in row 1
        Assert.Equal(2, clm.Count);
        Assert.Equal(-(logp[0, 0, 1].item<double>() + logp[0, 2, 3].item<double>()), clm.Sum.item<double>(), 12);
        var none = LanguageModelLosses.MaskedLm(logits, full_like(labels, -100));
        Assert.Equal(0, none.Count);
        Assert.Equal(0.0, none.LocalMean().item<double>());
    }

    [Fact]
    public void Clm_counts_argmax_hits_on_read_and_its_gradient_equals_the_narrowed_logits_loss()
    {
        torch.random.manual_seed(11);
        var logits = randn(2, 4, 5, ScalarType.Float64).requires_grad_();
        var labels = tensor(new long[,] { { 0, 1, 2, 3 }, { 4, 0, -100, 1 } });
        var clm = LanguageModelLosses.CausalLm(logits, labels);

        var predicted = logits.detach().argmax(-1);   // (B, T)
        int hits = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 3; t++)
                if (labels[b, t + 1].item<long>() is var gold && gold != -100 && predicted[b, t].item<long>() == gold) hits++;
        Assert.Equal(hits, clm.Metrics["correct"]);
        Assert.Equal(5, clm.Count);

        // Independent reference: the textbook form, logits narrowed to the first T-1 positions.
        var reference = logits.detach().clone().requires_grad_();
        var expected = nn.functional.cross_entropy(reference.narrow(1, 0, 3).reshape(-1, 5), labels.narrow(1, 1, 3).reshape(-1),
            ignore_index: -100, reduction: nn.Reduction.Sum);
        Assert.Equal(expected.item<double>(), clm.Sum.item<double>(), 12);
        clm.Sum.backward();
        expected.backward();
        Assert.True(logits.grad!.allclose(reference.grad!, rtol: 0, atol: 1e-12));
        Assert.Equal(0.0, logits.grad!.narrow(1, 3, 1).abs().sum().item<double>());   // the last position predicts nothing
    }

    [Fact]
    public void Sums_over_micro_batches_divided_by_the_global_count_equal_the_full_batch_mean()
    {
        var logits = randn(4, 6, 5, ScalarType.Float64);
        var labels = randint(0, 5, [4, 6], ScalarType.Int64).masked_fill(rand(4, 6).lt(0.5), -100);
        var whole = LanguageModelLosses.MaskedLm(logits, labels);
        var parts = Enumerable.Range(0, 4).Select(i => LanguageModelLosses.MaskedLm(logits.narrow(0, i, 1), labels.narrow(0, i, 1))).ToList();
        long global = parts.Sum(p => p.Count);
        double accumulated = parts.Sum(p => p.Normalize([global]).item<double>());
        Assert.Equal(whole.LocalMean().item<double>(), accumulated, 12);
    }

    [Fact]
    public void Combined_terms_report_the_anchor_count_and_normalise_each_part_by_its_own_count()
    {
        var a = new LossTerms(tensor(6.0), 3);
        var b = new LossTerms(tensor(10.0), 5);
        var combined = LossTerms.Combine(new LossPart("a", 1.0, a), new LossPart("b", 50.0, b));
        Assert.Equal(3, combined.Count);
        Assert.Equal(2.0 + 50 * 2.0, combined.LocalMean().item<double>(), 12);        // Σ w·mean locally
        Assert.Equal(6.0 / 6 + 50 * 10.0 / 20, combined.Normalize([6, 20]).item<double>(), 12);
        Assert.Equal(5, combined.Metrics["b.count"]);
    }

    [Fact]
    public void Rtd_counts_real_tokens_and_scores_binary_ce()
    {
        var logits = tensor(new[,] { { 2.0, -1.0, 0.5 }, { 0.0, 3.0, -2.0 } });
        var labels = tensor(new[,] { { true, false, false }, { true, true, false } });
        var mask = tensor(new long[,] { { 1, 1, 1 }, { 1, 1, 0 } });
        var terms = ClassificationLosses.ReplacedTokenDetection(logits, labels, mask);
        Assert.Equal(5, terms.Count);
        double expected = -Math.Log(Sigmoid(2.0)) - Math.Log(1 - Sigmoid(-1.0)) - Math.Log(1 - Sigmoid(0.5)) - Math.Log(Sigmoid(0.0)) - Math.Log(Sigmoid(3.0));
        Assert.Equal(expected, terms.Sum.item<double>(), 12);
        Assert.Equal(3, terms.Metrics["correct"]);   // 2.0→1 ✓, −1→0 ✓, 0.5→1 ✗, 0→0 ✗ (label 1), 3→1 ✓
    }

    [Fact]
    public void Distillation_matches_a_hand_computation_with_full_logits()
    {
        double[] s = [1.0, 2.0, 0.5], t = [3.0, 1.0, 0.0];
        double temperature = 2.0, alpha = 0.5, gamma = 0.1;
        var terms = DistillationLoss.Compute(tensor(s).view(1, 3), new TeacherSignal.FullLogits(tensor(t).view(1, 3)), tensor(new long[] { 0 }),
            new DistillationOptions(temperature, alpha, gamma));
        double[] ps = Softmax(s.Select(x => x / temperature).ToArray()), pt = Softmax(t.Select(x => x / temperature).ToArray());
        double kl = Enumerable.Range(0, 3).Sum(i => pt[i] * Math.Log(pt[i] / ps[i]));
        double ce = -Math.Log(Softmax(s)[0]);
        double mse = Enumerable.Range(0, 3).Average(i => (s[i] - t[i]) * (s[i] - t[i]));
        Assert.Equal(temperature * temperature * kl + alpha * ce + gamma * mse, terms.Sum.item<double>(), 12);
        Assert.Equal(1, terms.Count);

        // The "a·soft + (1 − a)·hard" form of a job spec, a = 0.7.
        var spec = DistillationLoss.Compute(tensor(s).view(1, 3), new TeacherSignal.FullLogits(tensor(t).view(1, 3)), tensor(new long[] { 0 }),
            new DistillationOptions(temperature, Alpha: 0.3, SoftWeight: 0.7));
        Assert.Equal(0.7 * temperature * temperature * kl + 0.3 * ce, spec.Sum.item<double>(), 12);
    }

    [Fact]
    public void Distillation_from_top_k_renormalises_the_tempered_teacher_over_the_k_ids()
    {
        double[] s = [0.2, 1.5, -0.3, 0.9], teacherProbs = [0.5, 0.3, 0.15, 0.05];
        double temperature = 2.0;
        long[] ids = [2, 0];                                   // the teacher's top-2 ids, probabilities 0.15 and 0.5 (any order)
        var probs = tensor(new[] { teacherProbs[2], teacherProbs[0] }).view(1, 2);
        var terms = DistillationLoss.Compute(tensor(s).view(1, 4), new TeacherSignal.TopK(tensor(ids).view(1, 2), probs), null,
            new DistillationOptions(temperature, Alpha: 0));
        double[] tempered = ids.Select(i => Math.Pow(teacherProbs[i], 1 / temperature)).ToArray();
        double z = tempered.Sum();
        double[] ps = Softmax(s.Select(x => x / temperature).ToArray());
        double kl = Enumerable.Range(0, 2).Sum(j => tempered[j] / z * Math.Log(tempered[j] / z / ps[ids[j]]));
        Assert.Equal(temperature * temperature * kl, terms.Sum.item<double>(), 12);

        // With k = V the top-k form is exact: it equals the full-logit loss for the same teacher.
        var logits = randn(3, 4, ScalarType.Float64);
        var student = randn(3, 4, ScalarType.Float64);
        var (p, order) = logits.softmax(-1).topk(4);
        var full = DistillationLoss.Compute(student, new TeacherSignal.FullLogits(logits), null, new DistillationOptions(3.0, 0));
        var topk = DistillationLoss.Compute(student, new TeacherSignal.TopK(order, p), null, new DistillationOptions(3.0, 0));
        Assert.Equal(full.Sum.item<double>(), topk.Sum.item<double>(), 10);
    }

    [Fact]
    public void Distillation_rejects_mse_without_full_logits()
    {
        var signal = new TeacherSignal.TopK(tensor(new long[,] { { 0 } }), tensor(new[,] { { 1.0 } }));
        Assert.Throws<ArgumentException>(() => DistillationLoss.Compute(randn(1, 3, ScalarType.Float64), signal, null, new DistillationOptions(Alpha: 0, Gamma: 1)));
        Assert.Throws<ArgumentException>(() => new DistillationOptions(Temperature: 0).Validate());
    }

    private static double[] Softmax(double[] x)
    {
        double max = x.Max();
        var e = x.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    /// <summary>Four (chosen, rejected) pairs sharing a 3-token prompt; the last 3 tokens are the response.</summary>
    internal static (Tensor Chosen, Tensor Rejected, Tensor ResponseMask) PreferenceBatch()
    {
        var prompt = Tiny.Ids(4, 3);
        var chosen = cat([prompt, Tiny.Ids(4, 3)], 1);
        var rejected = cat([prompt, Tiny.Ids(4, 3)], 1);
        var response = cat([zeros(4, 3, ScalarType.Int64), ones(4, 3, ScalarType.Int64)], 1);
        return (chosen, rejected, response);
    }
}
