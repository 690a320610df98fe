using System.Diagnostics;
using System.Text.Json;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// The stages that run a trained model without training it: label (the teacher writes top-k probabilities for
/// every example of a corpus, with a checksum) and evaluate (accuracy, macro-F1, agreement with the teacher,
/// parameters and inference speed, on a held-out split).
/// </summary>
public static class InferenceStages
{
    private const int TopK = 5;

    /// <summary>Labels the whole corpus in this process: one shard of one, then the same merge the cluster does.</summary>
    public static IReadOnlyDictionary<string, double> Label(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device, Action<int, int>? progress = null)
    {
        LabelShard(job, stage, artifacts, device, 0, 1, progress);
        return MergeLabels(job, stage, artifacts, 1);
    }

    /// <summary>Where shard <paramref name="shard"/> of <paramref name="count"/> of a label stage is stored.</summary>
    public static string ShardDirectory(StageArtifacts artifacts, int shard, int count) =>
        Path.Combine(artifacts.Labels, "shards", $"{shard:D3}-of-{count:D3}");

    /// <summary>
    /// The teacher's top-k (or full) class distribution for every example i with i mod count = shard, written with its
    /// own checksum. A shard already on storage whose checksum verifies is reused, so a re-dispatched stage redoes
    /// only what it lacks.
    /// </summary>
    public static ShardResult LabelShard(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device, int shard, int count, Action<int, int>? progress = null)
    {
        if (count < 1 || shard < 0 || shard >= count) throw new ArgumentException($"shard {shard} of {count} does not exist");
        string dir = ShardDirectory(artifacts, shard, count);
        try
        {
            var (header, _) = LabelFile.Read(dir);
            return new ShardResult(header.Examples, 0, Reused: true);
        }
        catch (InvalidDataException) { }   // absent, partial or corrupt: label it (again)

        var teacherStage = ObjectiveFactory.Required(job, stage.Inputs.Teacher, stage, "teacher");
        var task = ObjectiveFactory.TaskOfLabels(job, stage);
        var source = StageInputs.Data(job, stage, artifacts, classesOf: ObjectiveFactory.ClassifierRoot(job, stage));
        var split = ObjectiveFactory.ToSplit(stage.Data.Split);
        var data = ObjectiveFactory.Capped(ObjectiveFactory.LabelledSequences(source, task, split, stage.Data.SeqLen, teacherStage.Model.Family), stage.Data.MaxExamples);
        var mine = new ShardView<ClassificationExample>(data, shard, count);
        int classes = source.Classes.Count;
        int k = stage.Outputs.SoftLabels ? classes : Math.Min(TopK, classes);
        using var teacherModule = ObjectiveFactory.LoadTrained(job, teacherStage, artifacts, device);
        var teacher = (IClassifier)teacherModule;
        var clock = Stopwatch.StartNew();
        var labels = new List<SoftLabel>(mine.Count);
        foreach (var (indices, logits) in Predict(teacher, mine, stage.Train.BatchSize, device, progress))
        {
            using var scope = NewDisposeScope();
            var (probs, ids) = logits.softmax(-1).topk(k, -1);                          // (B, k), (B, k)
            var p = probs.to(ScalarType.Float32).cpu().data<float>().ToArray();
            var t = ids.to(ScalarType.Int32).cpu().data<int>().ToArray();
            for (int b = 0; b < indices.Count; b++)
                labels.Add(new SoftLabel(mine.Global(indices[b]), mine[indices[b]].Label, t[(b * k)..((b + 1) * k)], p[(b * k)..((b + 1) * k)]));
            logits.Dispose();
        }
        double seconds = clock.Elapsed.TotalSeconds;
        LabelFile.Write(dir, task.ToString().ToLowerInvariant(), split.ToString().ToLowerInvariant(), classes, teacherStage.Name, labels);
        File.WriteAllText(Path.Combine(dir, "timing.json"), JsonSerializer.Serialize(new { seconds }));
        return new ShardResult(labels.Count, seconds, Reused: false);
    }

    /// <summary>
    /// Joins the <paramref name="count"/> shards of a label stage (each verified against its checksum) into the stage's
    /// one label file, which the student stage reads as a dataset, and writes the stage's metrics.
    /// </summary>
    public static IReadOnlyDictionary<string, double> MergeLabels(JobSpec job, StageSpec stage, StageArtifacts artifacts, int count)
    {
        var shards = Enumerable.Range(0, count).Select(i => LabelFile.Read(ShardDirectory(artifacts, i, count))).ToList();
        var first = shards[0].Header;
        foreach (var (h, _) in shards)
            if (h.Task != first.Task || h.Split != first.Split || h.K != first.K || h.Classes != first.Classes || h.Teacher != first.Teacher)
                throw new InvalidDataException($"{artifacts.Labels}: shards disagree on task, split, k or teacher; they come from different runs");
        var labels = shards.SelectMany(s => s.Labels).ToList();
        if (labels.Select(l => l.Index).Distinct().Count() != labels.Count)
            throw new InvalidDataException($"{artifacts.Labels}: shards overlap; they come from different shard counts");
        double seconds = Enumerable.Range(0, count).Sum(i =>
        {
            string timing = Path.Combine(ShardDirectory(artifacts, i, count), "timing.json");
            return File.Exists(timing) ? JsonDocument.Parse(File.ReadAllText(timing)).RootElement.GetProperty("seconds").GetDouble() : 0;
        });
        var header = LabelFile.Write(artifacts.Labels, first.Task, first.Split, first.Classes, first.Teacher, labels);
        // Unlabelled text (gold −1) is what a teacher is for; accuracy is measured on the examples that have a gold label.
        var gold = labels.Where(l => l.Gold >= 0).ToList();
        long correct = gold.Count(l => l.Ids.Length > 0 && l.Ids[0] == l.Gold);
        var metrics = new Dictionary<string, double>
        {
            ["examples"] = labels.Count,
            ["top_k"] = first.K,
            ["shards"] = count,
            // Per device: examples over the summed time of the shards (shards on several workers overlap in wall time).
            ["examples_per_second"] = labels.Count / Math.Max(seconds, 1e-9),
        };
        if (gold.Count > 0) metrics["teacher_accuracy"] = (double)correct / gold.Count;
        WriteMetrics(artifacts, stage, metrics, new { labels = header });
        return metrics;
    }

    public static IReadOnlyDictionary<string, double> Evaluate(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device, Action<int, int>? progress = null)
    {
        var modelStage = ObjectiveFactory.Required(job, stage.Inputs.Init ?? stage.Inputs.Teacher, stage, "init (the model to evaluate)");
        var metrics = new Dictionary<string, double>();
        if (modelStage.Kind == StageKind.Pretrain) return EvaluateLanguageModel(job, stage, modelStage, artifacts, device);
        using var model = ObjectiveFactory.LoadTrained(job, modelStage, artifacts, device);
        if (model is not IClassifier classifier)
            throw new NotSupportedException($"evaluate: stage '{modelStage.Name}' is a {model.GetType().Name}; evaluate scores classifiers and pre-trained language models");
        var task = Lineage.TaskOf(job, modelStage) ?? throw new NotSupportedException($"evaluate: stage '{modelStage.Name}' is not a classifier");
        var source = StageInputs.Data(job, stage, artifacts, classesOf: modelStage);
        IIndexedDataset<ClassificationExample> Data(StageSpec s) => ObjectiveFactory.Capped(
            ObjectiveFactory.LabelledSequences(source, task, ObjectiveFactory.ToSplit(stage.Data.Split), stage.Data.SeqLen, s.Model.Family), stage.Data.MaxExamples);
        var data = Data(modelStage);
        int classes = source.Classes.Count;

        var (predictions, seconds) = Classify(classifier, data, stage.Train.BatchSize, device, progress);
        var sums = ClassificationMetrics.Keys(classes).ToDictionary(k => k, _ => 0.0);
        for (int i = 0; i < data.Count; i++)
        {
            int gold = data[i].Label, pred = predictions[i];
            sums["count"]++;
            sums[$"gold{gold}"]++;
            sums[$"pred{pred}"]++;
            if (gold == pred) { sums["correct"]++; sums[$"tp{gold}"]++; }
        }
        foreach (var (key, value) in ClassificationMetrics.From(sums, classes).Where(kv => kv.Key != "loss")) metrics[key] = value;
        metrics["parameters"] = ModelFactory.ParameterCount(model);
        metrics["examples_per_second"] = data.Count / Math.Max(seconds, 1e-9);

        if (stage.Inputs.Teacher is string teacherName && teacherName != modelStage.Name)
        {
            var teacherStage = job.Stage(teacherName)!;
            using var teacher = ObjectiveFactory.LoadTrained(job, teacherStage, artifacts, device);
            var (teacherPredictions, teacherSeconds) = Classify((IClassifier)teacher, Data(teacherStage), stage.Train.BatchSize, device, null);
            metrics["agreement"] = Enumerable.Range(0, data.Count).Count(i => teacherPredictions[i] == predictions[i]) / (double)Math.Max(1, data.Count);
            metrics["teacher_accuracy"] = Enumerable.Range(0, data.Count).Count(i => teacherPredictions[i] == data[i].Label) / (double)Math.Max(1, data.Count);
            metrics["teacher_parameters"] = ModelFactory.ParameterCount(teacher);
            metrics["teacher_examples_per_second"] = data.Count / Math.Max(teacherSeconds, 1e-9);
            metrics["accuracy_vs_teacher"] = metrics["accuracy"] / Math.Max(1e-9, metrics["teacher_accuracy"]);
            metrics["parameter_ratio"] = metrics["parameters"] / metrics["teacher_parameters"];
            metrics["speedup"] = metrics["examples_per_second"] / metrics["teacher_examples_per_second"];
        }
        WriteMetrics(artifacts, stage, metrics, new { model = modelStage.Name, split = stage.Data.Split.ToString().ToLowerInvariant() });
        return metrics;
    }

    /// <summary>
    /// A pre-trained language model's own validation loss, read on this stage's data at its <c>data.seq_len</c> and
    /// <c>max_examples</c> (on the validation split): e.g. XLNet or T5 trained at length N and scored at 2N, where
    /// relative positions must generalise, against BERT's absolute position table.
    /// </summary>
    private static IReadOnlyDictionary<string, double> EvaluateLanguageModel(JobSpec job, StageSpec stage, StageSpec modelStage, StageArtifacts artifacts, Device device)
    {
        var probe = modelStage with
        {
            // The evaluate stage's own data (its corpus or files, their fields and held-out shares), at its length and cap.
            Data = modelStage.Data with
            {
                Source = stage.Data.Source, Fields = stage.Data.Fields, ValidationFraction = stage.Data.ValidationFraction,
                TestFraction = stage.Data.TestFraction, SeqLen = stage.Data.SeqLen, MaxExamples = stage.Data.MaxExamples,
            },
            Inputs = new InputsSpec(Init: modelStage.Name),
        };
        using var objective = ObjectiveFactory.Create(job, probe, artifacts, device);
        var clock = Stopwatch.StartNew();
        var sums = objective.EvaluateShard(Enumerable.Range(0, objective.ValidationCount).ToArray(), Math.Max(1, stage.Train.BatchSize));
        double seconds = clock.Elapsed.TotalSeconds;
        var metrics = new Dictionary<string, double>(objective.Metrics(sums));
        foreach (var (key, value) in objective.Baselines()) metrics[key] = value;
        metrics["seq_len"] = stage.Data.SeqLen;
        metrics["examples"] = objective.ValidationCount;
        metrics["examples_per_second"] = objective.ValidationCount / Math.Max(seconds, 1e-9);
        WriteMetrics(artifacts, stage, metrics, new { model = modelStage.Name, split = "validation", seq_len = stage.Data.SeqLen });
        return metrics;
    }

    private static (int[] Predictions, double Seconds) Classify(IClassifier model, IIndexedDataset<ClassificationExample> data, int batchSize, Device device, Action<int, int>? progress)
    {
        var predictions = new int[data.Count];
        var clock = Stopwatch.StartNew();
        foreach (var (indices, logits) in Predict(model, data, batchSize, device, progress))
        {
            var argmax = logits.argmax(-1).to(ScalarType.Int32).cpu().data<int>().ToArray();
            for (int b = 0; b < indices.Count; b++) predictions[indices[b]] = argmax[b];
            logits.Dispose();
        }
        return (predictions, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Eval-mode, no-grad forward passes over the whole dataset in order; yields each batch's logits (B, C).</summary>
    private static IEnumerable<(IReadOnlyList<int> Indices, Tensor Logits)> Predict(IClassifier model, IIndexedDataset<ClassificationExample> data,
        int batchSize, Device device, Action<int, int>? progress)
    {
        ((nn.Module)model).eval();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            var indices = Enumerable.Range(start, Math.Min(batchSize, data.Count - start)).ToArray();
            Tensor logits;
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                var ids = indices.Select(i => data[i].InputIds).ToList();
                var idsT = Batching.Ids(ids, Batching.Width(ids, int.MaxValue), device);   // (B, T)
                logits = model.Classify(idsT, Batching.AttentionMask(idsT)).MoveToOuterDisposeScope(); // (B, C)
            }
            progress?.Invoke(start + indices.Length, data.Count);
            yield return (indices, logits);
        }
    }

    private static void WriteMetrics(StageArtifacts artifacts, StageSpec stage, IReadOnlyDictionary<string, double> metrics, object details)
    {
        Directory.CreateDirectory(artifacts.Directory);
        var document = new { stage = stage.Name, kind = stage.Kind.ToString().ToLowerInvariant(), metrics, details };
        File.WriteAllText(artifacts.Metrics, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The examples i with i mod count = shard of a dataset, re-indexed from 0.</summary>
    private sealed class ShardView<T>(IIndexedDataset<T> inner, int shard, int count) : IIndexedDataset<T>
    {
        public int Count { get; } = inner.Count <= shard ? 0 : (inner.Count - shard + count - 1) / count;
        public T this[int index] => inner[Global(index)];
        public int Global(int index) => shard + index * count;
    }
}
