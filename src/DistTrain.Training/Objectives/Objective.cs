using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>A micro-batch whose counts were read from its labels and whose loss is one closure over device tensors.</summary>
public sealed class MicroBatch(IReadOnlyList<long> partCounts, Func<LossTerms> loss, IDisposable? tensors) : IMicroBatch
{
    public IReadOnlyList<long> PartCounts { get; } = partCounts;
    public LossTerms Loss() => loss();
    public void Dispose() => tensors?.Dispose();
}

/// <summary>Owns the tensors a micro-batch collated, so they are freed when the trainer disposes it.</summary>
public sealed class TensorBag : IDisposable
{
    private readonly List<Tensor> _tensors = new();
    public Tensor Add(Tensor t) { _tensors.Add(t); return t; }
    public void Dispose() { foreach (var t in _tensors) t.Dispose(); _tensors.Clear(); }
}

/// <summary>
/// One training objective bound to its model and data: what the trainer optimises (<see cref="Model"/>), how a
/// list of example indices becomes a micro-batch, and how validation is scored. Knows nothing of ranks except
/// that evaluation sums are reduced by the caller.
/// </summary>
public abstract class Objective : IDisposable
{
    protected Objective(Device device) => Device = device;

    public Device Device { get; }

    /// <summary>The module the trainer optimises and checkpoints.</summary>
    public abstract nn.Module Model { get; }

    public abstract int TrainCount { get; }
    public abstract int ValidationCount { get; }

    /// <summary>Collates training examples <paramref name="indices"/> (epoch <paramref name="epoch"/>) onto the device.</summary>
    public abstract IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch);

    /// <summary>Collates validation examples; deterministic (no dynamic masking drift between evaluations).</summary>
    public abstract IMicroBatch ValidationBatch(IReadOnlyList<int> indices);

    /// <summary>Names of the additive sums evaluation produces, the same on every rank (reduction order).</summary>
    public virtual IReadOnlyList<string> EvalKeys => ["loss_sum", "count", "correct"];

    /// <summary>Turns reduced evaluation sums into reported metrics (loss, perplexity, accuracy, …).</summary>
    public virtual IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> sums)
    {
        double count = Math.Max(1, sums["count"]);
        return new Dictionary<string, double>
        {
            ["loss"] = sums["loss_sum"] / count,
            ["accuracy"] = sums["correct"] / count,
        };
    }

    /// <summary>
    /// Reference scores on the same validation targets (e.g. the unigram perplexity a language model must beat),
    /// computed from data alone; empty where there is none.
    /// </summary>
    public virtual IReadOnlyDictionary<string, double> Baselines() => new Dictionary<string, double>();

    /// <summary>Scores this rank's share of validation examples; returns <see cref="EvalKeys"/> sums.</summary>
    public Dictionary<string, double> EvaluateShard(IReadOnlyList<int> indices, int batchSize)
    {
        var sums = EvalKeys.ToDictionary(k => k, _ => 0.0);
        bool wasTraining = Model.training;
        Model.eval();
        try
        {
            using var _ = no_grad();
            for (int start = 0; start < indices.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                using var batch = ValidationBatch(indices.Skip(start).Take(batchSize).ToArray());
                var terms = batch.Loss();
                Accumulate(sums, terms);
            }
        }
        finally
        {
            Model.train(wasTraining);
        }
        return sums;
    }

    /// <summary>Adds one batch's terms to the sums; composite objectives override to keep parts apart.</summary>
    protected virtual void Accumulate(Dictionary<string, double> sums, LossTerms terms)
    {
        sums["loss_sum"] += terms.Sum.detach().cpu().to(ScalarType.Float64).item<double>();
        sums["count"] += terms.Count;
        foreach (var key in EvalKeys.Skip(2))
            if (terms.Metrics.TryGetValue(key, out double v)) sums[key] += v;
    }

    public virtual void Dispose() => Model.Dispose();
}

/// <summary>
/// An objective over a train and a validation dataset of one example type, whose micro-batch depends only on the
/// examples it holds (and, for dynamic masking, the epoch; -1 for validation). Subclasses write the collation.
/// </summary>
public abstract class DatasetObjective<TModel, TExample>(TModel model, Device device, IIndexedDataset<TExample> train, IIndexedDataset<TExample> validation)
    : Objective(device) where TModel : nn.Module
{
    protected TModel Net { get; } = model;
    protected IIndexedDataset<TExample> Train { get; } = train;
    protected IIndexedDataset<TExample> Validation { get; } = validation;

    public override nn.Module Model => Net;
    public override int TrainCount => Train.Count;
    public override int ValidationCount => Validation.Count;
    public override IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch) => Batch(Train, indices, epoch);
    public override IMicroBatch ValidationBatch(IReadOnlyList<int> indices) => Batch(Validation, indices, -1);

    /// <summary>Collates examples <paramref name="indices"/> of <paramref name="data"/> onto the device.</summary>
    protected abstract IMicroBatch Batch(IIndexedDataset<TExample> data, IReadOnlyList<int> indices, int epoch);
}
