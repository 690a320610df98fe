using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>Instruction SFT: next-token loss on answer tokens only, "Question: … Answer: …".</summary>
public sealed class SftObjective(GptLanguageModel model, Device device,
    IIndexedDataset<InstructionExample> train, IIndexedDataset<InstructionExample> validation) : DatasetObjective<GptLanguageModel, InstructionExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<InstructionExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, width) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);   // (B, T), (B, T)
        var answerT = bag.Add(Batching.Flags(rows.Select(r => r.LossMask).ToList(), width, Device)); // (B, T)
        // Position 0 is never a target, so only answer flags from position 1 on count.
        long targets = rows.Sum(r => r.LossMask.Take(width).Skip(1).LongCount(f => f));
        return new MicroBatch([targets], () => LanguageModelLosses.InstructionSft(Net.forward(idsT, maskT), idsT, answerT), bag);
    }

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        double n = Math.Max(1, s["count"]);
        return new Dictionary<string, double> { ["loss"] = s["loss_sum"] / n, ["answer_perplexity"] = Math.Exp(s["loss_sum"] / n), ["answer_token_accuracy"] = s["correct"] / n };
    }
}

/// <summary>Collates preference pairs: chosen and rejected rows padded to one width.</summary>
internal static class Pairs
{
    public static (Tensor Chosen, Tensor ChosenMask, Tensor Rejected, Tensor RejectedMask) Collate(IReadOnlyList<ComparisonExample> rows, Device device, TensorBag bag)
    {
        var chosen = rows.Select(r => r.Chosen).ToList();
        var rejected = rows.Select(r => r.Rejected).ToList();
        var c = bag.Add(Batching.Ids(chosen, Batching.Width(chosen, int.MaxValue), device));     // (B, Tc)
        var r = bag.Add(Batching.Ids(rejected, Batching.Width(rejected, int.MaxValue), device)); // (B, Tr)
        return (c, bag.Add(Batching.AttentionMask(c)), r, bag.Add(Batching.AttentionMask(r)));
    }
}

/// <summary>Reward model: Bradley–Terry on (real text, corrupted text) pairs; pairwise accuracy.</summary>
public sealed class RewardObjective(RewardModel model, Device device,
    IIndexedDataset<ComparisonExample> train, IIndexedDataset<ComparisonExample> validation) : DatasetObjective<RewardModel, ComparisonExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<ComparisonExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var bag = new TensorBag();
        var rows = indices.Select(i => data[i]).ToList();
        var (c, cm, r, rm) = Pairs.Collate(rows, Device, bag);
        return new MicroBatch([indices.Count], () =>
        {
            var chosen = Net.forward(c, cm, null);                                     // (B)
            var rejected = Net.forward(r, rm, null);                                   // (B)
            var terms = PreferenceLosses.BradleyTerry(chosen, rejected);
            // Per corruption kind, so a shortfall can be traced to the kind of pair that is hard.
            var right = chosen.gt(rejected).cpu().data<bool>().ToArray();
            var metrics = new Dictionary<string, double>(terms.Metrics);
            foreach (var kind in Kinds) { metrics[$"{kind}.count"] = 0; metrics[$"{kind}.correct"] = 0; }
            for (int b = 0; b < rows.Count; b++)
            {
                metrics[$"{Name(rows[b].Kind)}.count"]++;
                if (right[b]) metrics[$"{Name(rows[b].Kind)}.correct"]++;
            }
            return terms with { Metrics = metrics };
        }, bag);
    }

    private static readonly string[] Kinds = Enum.GetValues<CorruptionKind>().Select(Name).ToArray();
    private static string Name(CorruptionKind kind) => kind switch
    {
        CorruptionKind.ShuffledWords => "shuffled",
        CorruptionKind.SwappedSentences => "swapped",
        CorruptionKind.DroppedWords => "dropped",
        _ => "given",
    };

    public override IReadOnlyList<string> EvalKeys => ["loss_sum", "count", "correct", .. Kinds.SelectMany(k => new[] { $"{k}.count", $"{k}.correct" })];

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        double n = Math.Max(1, s["count"]);
        var metrics = new Dictionary<string, double> { ["loss"] = s["loss_sum"] / n, ["pairwise_accuracy"] = s["correct"] / n };
        // Per kind of pair, for the kinds the data has (the built-in corruptions, or "given": a user's own pairs).
        foreach (var kind in Kinds.Where(k => s[$"{k}.count"] > 0)) metrics[$"pairwise_accuracy_{kind}"] = s[$"{kind}.correct"] / s[$"{kind}.count"];
        return metrics;
    }
}

/// <summary>DPO: the policy against a frozen reference; preference accuracy is how often the implicit reward ranks chosen first.</summary>
public sealed class DpoObjective(GptLanguageModel policy, GptLanguageModel reference, Device device, double beta,
    IIndexedDataset<ComparisonExample> train, IIndexedDataset<ComparisonExample> validation) : DatasetObjective<GptLanguageModel, ComparisonExample>(policy, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<ComparisonExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var bag = new TensorBag();
        var (c, cm, r, rm) = Pairs.Collate(indices.Select(i => data[i]).ToList(), Device, bag);
        return new MicroBatch([indices.Count], () =>
        {
            // The whole text is the response (there is no prompt); position 0 (bos) is never scored.
            var policyChosen = LanguageModelLosses.SequenceLogProbs(Net.forward(c, cm), c, cm);    // (B)
            var policyRejected = LanguageModelLosses.SequenceLogProbs(Net.forward(r, rm), r, rm);  // (B)
            Tensor refChosen, refRejected;
            using (no_grad())
            {
                refChosen = LanguageModelLosses.SequenceLogProbs(reference.forward(c, cm), c, cm);    // (B)
                refRejected = LanguageModelLosses.SequenceLogProbs(reference.forward(r, rm), r, rm);  // (B)
            }
            var terms = PreferenceLosses.Dpo(policyChosen, policyRejected, refChosen, refRejected, beta);
            // Preference accuracy is 0 for the initial policy by construction (policy = reference gives a zero
            // margin), so the before/after figure is the plain likelihood ranking: how often each model gives the
            // chosen text more probability than the rejected one. The reference is the initial policy.
            return terms with
            {
                Metrics = new Dictionary<string, double>(terms.Metrics)
                {
                    ["policy_ranked"] = policyChosen.gt(policyRejected).sum().cpu().item<long>(),
                    ["reference_ranked"] = refChosen.gt(refRejected).sum().cpu().item<long>(),
                },
            };
        }, bag);
    }

    public override IReadOnlyList<string> EvalKeys => ["loss_sum", "count", "correct", "margin", "policy_ranked", "reference_ranked"];

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        double n = Math.Max(1, s["count"]);
        return new Dictionary<string, double>
        {
            ["loss"] = s["loss_sum"] / n,
            ["preference_accuracy"] = s["correct"] / n,
            ["mean_margin"] = s["margin"] / n,
            ["likelihood_accuracy"] = s["policy_ranked"] / n,
            ["reference_likelihood_accuracy"] = s["reference_ranked"] / n,
        };
    }

    public override void Dispose()
    {
        reference.Dispose();
        base.Dispose();
    }
}
