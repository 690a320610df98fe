using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>Sequence classification (Brown genre, spam/ham): cross-entropy on the pooled representation; accuracy and macro-F1.</summary>
public sealed class SequenceClassificationObjective(SequenceClassifier model, Device device, int classes,
    IIndexedDataset<ClassificationExample> train, IIndexedDataset<ClassificationExample> validation) : Objective(device)
{
    public override nn.Module Model => model;
    public SequenceClassifier Classifier => model;
    public int Classes => classes;
    public override int TrainCount => train.Count;
    public override int ValidationCount => validation.Count;
    public override IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch) => Batch(train, indices);
    public override IMicroBatch ValidationBatch(IReadOnlyList<int> indices) => Batch(validation, indices);

    private IMicroBatch Batch(IIndexedDataset<ClassificationExample> data, IReadOnlyList<int> indices)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var ids = rows.Select(r => r.InputIds).ToList();
        var bag = new TensorBag();
        var idsT = bag.Add(Batching.Ids(ids, Batching.Width(ids, int.MaxValue), Device));   // (B, T)
        var maskT = bag.Add(Batching.AttentionMask(idsT));                                   // (B, T)
        var labelsT = bag.Add(Batching.Labels(rows.Select(r => r.Label), Device));           // (B)
        return new MicroBatch([rows.Count], () =>
        {
            var logits = model.forward(idsT, maskT, null);                                   // (B, C)
            return ClassificationMetrics.WithConfusion(ClassificationLosses.Sequence(logits, labelsT), logits, labelsT, classes);
        }, bag);
    }

    public override IReadOnlyList<string> EvalKeys => ClassificationMetrics.Keys(classes);
    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s) => ClassificationMetrics.From(s, classes);
}

/// <summary>Accuracy and macro-F1 from additive per-class counts, so they reduce across ranks by summation.</summary>
public static class ClassificationMetrics
{
    public static IReadOnlyList<string> Keys(int classes) =>
        ["loss_sum", "count", "correct", .. Enumerable.Range(0, classes).SelectMany(c => new[] { $"tp{c}", $"pred{c}", $"gold{c}" })];

    /// <summary>Adds per-class true positives, predictions and gold counts to a batch's terms.</summary>
    public static LossTerms WithConfusion(LossTerms terms, Tensor logits, Tensor labels, int classes)
    {
        var predicted = logits.argmax(-1).cpu().data<long>().ToArray();
        var gold = labels.cpu().data<long>().ToArray();
        var metrics = new Dictionary<string, double>(terms.Metrics);
        for (int c = 0; c < classes; c++) { metrics[$"tp{c}"] = 0; metrics[$"pred{c}"] = 0; metrics[$"gold{c}"] = 0; }
        for (int i = 0; i < gold.Length; i++)
        {
            metrics[$"pred{predicted[i]}"]++;
            metrics[$"gold{gold[i]}"]++;
            if (predicted[i] == gold[i]) metrics[$"tp{gold[i]}"]++;
        }
        return terms with { Metrics = metrics };
    }

    public static IReadOnlyDictionary<string, double> From(IReadOnlyDictionary<string, double> s, int classes)
    {
        double n = Math.Max(1, s["count"]);
        // Macro-F1 over the classes present in the evaluated split.
        var f1 = Enumerable.Range(0, classes).Where(c => s[$"gold{c}"] > 0)
            .Select(c => s[$"tp{c}"] == 0 ? 0 : 2 * s[$"tp{c}"] / (s[$"pred{c}"] + s[$"gold{c}"])).ToList();
        return new Dictionary<string, double>
        {
            ["loss"] = s["loss_sum"] / n,
            ["accuracy"] = s["correct"] / n,
            ["macro_f1"] = f1.Count == 0 ? 0 : f1.Average(),
        };
    }
}

/// <summary>Token classification (POS tagging on Brown's tags): a label on each word's first sub-token.</summary>
public sealed class TokenClassificationObjective(TokenClassifier model, Device device,
    IIndexedDataset<TokenClassificationExample> train, IIndexedDataset<TokenClassificationExample> validation) : Objective(device)
{
    public override nn.Module Model => model;
    public override int TrainCount => train.Count;
    public override int ValidationCount => validation.Count;
    public override IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch) => Batch(train, indices);
    public override IMicroBatch ValidationBatch(IReadOnlyList<int> indices) => Batch(validation, indices);

    private IMicroBatch Batch(IIndexedDataset<TokenClassificationExample> data, IReadOnlyList<int> indices)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var ids = rows.Select(r => r.InputIds).ToList();
        int width = Batching.Width(ids, int.MaxValue);
        var bag = new TensorBag();
        var idsT = bag.Add(Batching.Ids(ids, width, Device));                                                     // (B, T)
        var maskT = bag.Add(Batching.AttentionMask(idsT));                                                         // (B, T)
        var labelsT = bag.Add(Batching.Ids(rows.Select(r => r.Labels).ToList(), width, Device, TokenClassificationExample.Ignore)); // (B, T)
        long targets = rows.Sum(r => r.Labels.Take(width).LongCount(l => l != TokenClassificationExample.Ignore));
        return new MicroBatch([targets], () => ClassificationLosses.Token(model.forward(idsT, maskT, null), labelsT), bag);
    }
}
