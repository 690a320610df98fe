using DistTrain.Data.Datasets;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>Sequence classification (Brown genre, spam/ham): cross-entropy on the pooled representation; accuracy and macro-F1.</summary>
public sealed class SequenceClassificationObjective(SequenceClassifier model, Device device, int classes,
    IIndexedDataset<ClassificationExample> train, IIndexedDataset<ClassificationExample> validation) : DatasetObjective<SequenceClassifier, ClassificationExample>(model, device, train, validation)
{
    public SequenceClassifier Classifier => Net;
    public int Classes => classes;

    protected override IMicroBatch Batch(IIndexedDataset<ClassificationExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);   // (B, T), (B, T)
        var labelsT = bag.Add(Batching.Labels(rows.Select(r => r.Label), Device));           // (B)
        return new MicroBatch([rows.Count], () =>
        {
            var logits = Net.forward(idsT, maskT, null);                                   // (B, C)
            return ClassificationMetrics.WithConfusion(ClassificationLosses.Sequence(logits, labelsT), logits, labelsT, classes);
        }, bag);
    }

    public override IReadOnlyList<string> EvalKeys => ClassificationMetrics.Keys(classes);
    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s) => ClassificationMetrics.From(s, classes);

    /// <summary>The majority-class accuracy: the most frequent training label predicted for every validation example.</summary>
    public override IReadOnlyDictionary<string, double> Baselines() => new Dictionary<string, double>
    {
        ["majority_accuracy"] = ClassificationMetrics.MajorityAccuracy(
            Enumerable.Range(0, Train.Count).Select(i => Train[i].Label), Enumerable.Range(0, Validation.Count).Select(i => Validation[i].Label)),
    };
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
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = s["loss_sum"] / n,
            ["accuracy"] = s["correct"] / n,
            ["macro_f1"] = f1.Count == 0 ? 0 : f1.Average(),
        };
        // Binary tasks (spam = 1) also report the F1 of the positive class, the usual spam-filter figure.
        if (classes == 2)
        {
            double tp = s["tp1"], predicted = s["pred1"], gold = s["gold1"];
            metrics["precision"] = predicted == 0 ? 0 : tp / predicted;
            metrics["recall"] = gold == 0 ? 0 : tp / gold;
            metrics["f1"] = predicted + gold == 0 ? 0 : 2 * tp / (predicted + gold);
        }
        return metrics;
    }

    /// <summary>Accuracy of always predicting the most frequent label of <paramref name="train"/> on <paramref name="validation"/>.</summary>
    public static double MajorityAccuracy(IEnumerable<int> train, IEnumerable<int> validation)
    {
        var counts = train.GroupBy(l => l).Select(g => (Label: g.Key, Count: g.Count())).ToList();
        if (counts.Count == 0) return 0;
        int majority = counts.OrderByDescending(c => c.Count).ThenBy(c => c.Label).First().Label;
        var gold = validation.ToList();
        return gold.Count == 0 ? 0 : gold.Count(l => l == majority) / (double)gold.Count;
    }
}

/// <summary>Token classification (POS tagging on Brown's tags): a label on each word's first sub-token.</summary>
public sealed class TokenClassificationObjective(TokenClassifier model, Device device,
    IIndexedDataset<TokenClassificationExample> train, IIndexedDataset<TokenClassificationExample> validation) : DatasetObjective<TokenClassifier, TokenClassificationExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<TokenClassificationExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, width) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);   // (B, T), (B, T)
        var labelsT = bag.Add(Batching.Ids(rows.Select(r => r.Labels).ToList(), width, Device, TokenClassificationExample.Ignore)); // (B, T)
        long targets = rows.Sum(r => r.Labels.Take(width).LongCount(l => l != TokenClassificationExample.Ignore));
        return new MicroBatch([targets], () => ClassificationLosses.Token(Net.forward(idsT, maskT, null), labelsT), bag);
    }

    /// <summary>
    /// The most-frequent-tag baseline on the same validation targets: each word gets the tag it carried most often in
    /// the training examples; a word never seen there gets the most frequent tag overall.
    /// </summary>
    public override IReadOnlyDictionary<string, double> Baselines()
    {
        var baseline = MostFrequentTag.Fit(Enumerable.Range(0, Train.Count).Select(i => Train[i]));
        return new Dictionary<string, double>
        {
            ["most_frequent_tag_accuracy"] = baseline.Accuracy(Enumerable.Range(0, Validation.Count).Select(i => Validation[i])),
        };
    }
}

/// <summary>
/// Per-word most-frequent tag, read from token-classification examples. A word is the run of sub-tokens from a
/// labelled position (its first sub-token) up to the next labelled position or special token, so its key is its
/// exact spelling in the corpus (case and leading space included).
/// </summary>
public sealed class MostFrequentTag
{
    private readonly Dictionary<string, int> _tagOf;
    private readonly int _overall;

    private MostFrequentTag(Dictionary<string, int> tagOf, int overall) => (_tagOf, _overall) = (tagOf, overall);

    public static MostFrequentTag Fit(IEnumerable<TokenClassificationExample> train)
    {
        var perWord = new Dictionary<string, Dictionary<int, int>>();
        var overall = new Dictionary<int, int>();
        foreach (var ex in train)
            foreach (var (word, tag) in Words(ex))
            {
                if (!perWord.TryGetValue(word, out var tags)) perWord[word] = tags = new Dictionary<int, int>();
                tags[tag] = tags.GetValueOrDefault(tag) + 1;
                overall[tag] = overall.GetValueOrDefault(tag) + 1;
            }
        // Ties go to the smaller label id, so the baseline is deterministic.
        static int Best(Dictionary<int, int> counts) => counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).First().Key;
        return new MostFrequentTag(perWord.ToDictionary(kv => kv.Key, kv => Best(kv.Value)), overall.Count == 0 ? 0 : Best(overall));
    }

    public int Predict(string word) => _tagOf.TryGetValue(word, out int tag) ? tag : _overall;

    /// <summary>Share of labelled words in <paramref name="examples"/> whose gold tag is the predicted one.</summary>
    public double Accuracy(IEnumerable<TokenClassificationExample> examples)
    {
        long correct = 0, total = 0;
        foreach (var ex in examples)
            foreach (var (word, tag) in Words(ex)) { total++; if (Predict(word) == tag) correct++; }
        return total == 0 ? 0 : (double)correct / total;
    }

    /// <summary>(word key, gold label) for every labelled position of one example.</summary>
    public static IEnumerable<(string Word, int Tag)> Words(TokenClassificationExample ex)
    {
        for (int i = 0; i < ex.Labels.Length; i++)
        {
            if (ex.Labels[i] == TokenClassificationExample.Ignore) continue;
            int end = i + 1;
            while (end < ex.InputIds.Length && ex.Labels[end] == TokenClassificationExample.Ignore && !SpecialTokens.IsSpecial(ex.InputIds[end])) end++;
            yield return (string.Join(',', ex.InputIds[i..end]), ex.Labels[i]);
        }
    }
}
