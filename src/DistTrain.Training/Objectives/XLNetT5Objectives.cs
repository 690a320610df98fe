using DistTrain.Data.Datasets;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Evaluation;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>XLNet permutation LM on packed sequences: a fresh order per example and epoch, the last 1/K of it predicted.</summary>
public sealed class XLNetPermutationObjective(XLNetLanguageModel model, Device device, int k, ulong seed,
    IIndexedDataset<LmExample> train, IIndexedDataset<LmExample> validation) : DatasetObjective<XLNetLanguageModel, LmExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<LmExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = new List<int[]>();
        var ranks = new List<int[]>();
        var labels = new List<int[]>();
        foreach (int i in indices)
        {
            var ex = data[i];
            var (r, l) = Permutations.Sample(ex.InputIds, ex.Length, k, seed, epoch, i);
            rows.Add(ex.InputIds[..ex.Length]);
            ranks.Add(r);
            labels.Add(l);
        }
        var bag = new TensorBag();
        var (idsT, maskT, width) = Batching.Inputs(rows, Device, bag);                              // (B, T), (B, T)
        // Padding ranks after every real one; attention never shows padding anyway.
        var ranksT = bag.Add(Batching.Ids(ranks, width, Device, pad: width));                        // (B, T)
        var labelsT = bag.Add(Batching.Ids(labels, width, Device, Permutations.Ignore));             // (B, T)
        long targets = labels.Sum(l => l.LongCount(x => x != Permutations.Ignore));
        return new MicroBatch([targets], () => Net.Loss(idsT, ranksT, maskT, labelsT), bag);
    }

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s) => LmMetrics.From(s);

    /// <summary>Unigram perplexity on exactly the validation targets scored (the fixed validation orders).</summary>
    public override IReadOnlyDictionary<string, double> Baselines()
    {
        IEnumerable<IReadOnlyList<int>> Targets(IIndexedDataset<LmExample> d) => Enumerable.Range(0, d.Count).Select(i =>
            (IReadOnlyList<int>)Permutations.Sample(d[i].InputIds, d[i].Length, k, seed, -1, i).Labels.Where(t => t != Permutations.Ignore).ToArray());
        return UnigramBaseline.Metrics(Targets(Train), Targets(Validation), Net.Backbone.Config.VocabSize);
    }
}

/// <summary>T5 span corruption on packed sequences: spans redrawn per example and epoch; the decoder writes sentinels and spans.</summary>
public sealed class T5SpanCorruptionObjective(T5Model model, Device device, double density, double meanSpan, ulong seed,
    IIndexedDataset<LmExample> train, IIndexedDataset<LmExample> validation) : DatasetObjective<T5Model, LmExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<LmExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var inputs = new List<int[]>();
        var targets = new List<int[]>();
        foreach (int i in indices)
        {
            var (input, target) = Corrupt(data, i, epoch);
            inputs.Add(input);
            targets.Add(target);
        }
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(inputs, Device, bag);                                 // (B, S), (B, S)
        var (decoderT, labelsT) = TeacherForcing.Collate(targets, Net.Config.DecoderStartTokenId, Device, bag); // (B, T), (B, T)
        return new MicroBatch([targets.Sum(t => (long)t.Length)], () => Net.Loss(idsT, maskT, decoderT, labelsT), bag);
    }

    private (int[] Input, int[] Target) Corrupt(IIndexedDataset<LmExample> data, int i, int epoch)
    {
        var ex = data[i];
        return SpanCorruption.Apply(ex.InputIds[..ex.Length], density, meanSpan, seed, epoch, i);
    }

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s) => LmMetrics.From(s);

    /// <summary>Unigram perplexity of the validation targets (sentinels, span tokens, eos), fitted on the training targets.</summary>
    public override IReadOnlyDictionary<string, double> Baselines()
    {
        IEnumerable<IReadOnlyList<int>> Targets(IIndexedDataset<LmExample> d) => Enumerable.Range(0, d.Count).Select(i => (IReadOnlyList<int>)Corrupt(d, i, -1).Target);
        return UnigramBaseline.Metrics(Targets(Train), Targets(Validation), Net.Config.VocabSize);
    }
}

/// <summary>
/// Text-to-text classification for T5: train by generating the gold label word; validate by that loss and by rank
/// classification (the label word with the highest decoder log-likelihood), reported as accuracy and macro-F1.
/// </summary>
public sealed class T5TextToTextObjective(T5TextClassifier model, Device device, IReadOnlyList<int[]> labelWords,
    IIndexedDataset<ClassificationExample> train, IIndexedDataset<ClassificationExample> validation)
    : DatasetObjective<T5TextClassifier, ClassificationExample>(model, device, train, validation)
{
    private int Classes => labelWords.Count;

    protected override IMicroBatch Batch(IIndexedDataset<ClassificationExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);  // (B, S), (B, S)
        var labelsT = bag.Add(Batching.Labels(rows.Select(r => r.Label), Device));                  // (B)
        long tokens = rows.Sum(r => (long)labelWords[r.Label].Length);
        bool scoring = epoch < 0;   // validation also ranks every label word; training only needs the gold one
        return new MicroBatch([tokens], () =>
        {
            var terms = Net.Loss(idsT, maskT, labelsT);
            if (!scoring) return terms;
            var scores = Net.Classify(idsT, maskT);                                                   // (B, C)
            var withConfusion = ClassificationMetrics.WithConfusion(terms, scores, labelsT, Classes);
            var metrics = new Dictionary<string, double>(withConfusion.Metrics)
            {
                ["examples"] = rows.Count,
                ["correct"] = CorrectCount(scores, labelsT),
            };
            return withConfusion with { Metrics = metrics };
        }, bag);
    }

    private static double CorrectCount(Tensor scores, Tensor labels) => scores.argmax(-1).eq(labels).sum().cpu().item<long>();

    public override IReadOnlyList<string> EvalKeys => ["loss_sum", "count", "examples", .. ClassificationMetrics.Keys(Classes).Skip(2)];

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        // Accuracy is per example; the loss is per label-word token.
        var perExample = new Dictionary<string, double>(s) { ["count"] = s["examples"] };
        var metrics = new Dictionary<string, double>(ClassificationMetrics.From(perExample, Classes))
        {
            ["loss"] = s["loss_sum"] / Math.Max(1, s["count"]),
        };
        return metrics;
    }

    public override IReadOnlyDictionary<string, double> Baselines() => new Dictionary<string, double>
    {
        ["majority_accuracy"] = ClassificationMetrics.MajorityAccuracy(
            Enumerable.Range(0, Train.Count).Select(i => Train[i].Label), Enumerable.Range(0, Validation.Count).Select(i => Validation[i].Label)),
    };
}

/// <summary>Decoder inputs and labels for teacher forcing: inputs are the targets shifted right behind a start id.</summary>
public static class TeacherForcing
{
    /// <summary>targets (rows of ids, EOS included) → decoder inputs (B, T) padded with pad, labels (B, T) padded with −100.</summary>
    public static (Tensor Inputs, Tensor Labels) Collate(IReadOnlyList<int[]> targets, int startId, Device device, TensorBag bag)
    {
        int width = Batching.Width(targets, int.MaxValue);
        var shifted = targets.Select(t => (int[])[startId, .. t.AsSpan(0, t.Length - 1)]).ToList();
        return (bag.Add(Batching.Ids(shifted, width, device, SpecialTokens.Pad)), bag.Add(Batching.Ids(targets, width, device, LanguageModelLosses.IgnoreIndex)));
    }
}

/// <summary>Loss, perplexity and token accuracy from additive LM sums.</summary>
internal static class LmMetrics
{
    public static IReadOnlyDictionary<string, double> From(IReadOnlyDictionary<string, double> s)
    {
        double n = Math.Max(1, s["count"]);
        return new Dictionary<string, double> { ["loss"] = s["loss_sum"] / n, ["perplexity"] = Math.Exp(s["loss_sum"] / n), ["accuracy"] = s["correct"] / n };
    }
}
