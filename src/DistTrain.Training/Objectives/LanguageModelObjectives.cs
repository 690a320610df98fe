using DistTrain.Data;
using DistTrain.Data.Datasets;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>Masked LM for BERT, RoBERTa and ALBERT: packed sequences, or sentence pairs with NSP/SOP.</summary>
public sealed class MaskedLmObjective : Objective
{
    private readonly EncoderForPreTraining _model;
    private readonly IIndexedDataset<LmExample>? _trainPacked, _validPacked;
    private readonly IIndexedDataset<SentencePairExample>? _trainPairs, _validPairs;
    private readonly double _maskProb;
    private readonly int _vocab;
    private readonly ulong _seed;

    public MaskedLmObjective(EncoderForPreTraining model, Device device, int vocabSize, double maskProb, ulong seed,
        IIndexedDataset<LmExample>? trainPacked, IIndexedDataset<LmExample>? validPacked,
        IIndexedDataset<SentencePairExample>? trainPairs, IIndexedDataset<SentencePairExample>? validPairs) : base(device)
    {
        (_model, _vocab, _maskProb, _seed) = (model, vocabSize, maskProb, seed);
        (_trainPacked, _validPacked, _trainPairs, _validPairs) = (trainPacked, validPacked, trainPairs, validPairs);
        if ((_trainPacked is null) == (_trainPairs is null)) throw new ArgumentException("give packed sequences or sentence pairs, not both");
    }

    public override nn.Module Model => _model;
    private bool Pairs => _trainPairs is not null;
    public override int TrainCount => Pairs ? _trainPairs!.Count : _trainPacked!.Count;
    public override int ValidationCount => Pairs ? _validPairs!.Count : _validPacked!.Count;

    // Validation masks use a fixed epoch so every evaluation scores the same positions.
    public override IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch) => Batch(indices, epoch, train: true);
    public override IMicroBatch ValidationBatch(IReadOnlyList<int> indices) => Batch(indices, -1, train: false);

    private IMicroBatch Batch(IReadOnlyList<int> indices, int epoch, bool train)
    {
        var inputs = new List<int[]>();
        var labels = new List<int[]>();
        var segments = new List<int[]>();
        var pairLabels = new List<int>();
        foreach (int i in indices)
        {
            int[] ids;
            if (Pairs)
            {
                var ex = (train ? _trainPairs! : _validPairs!)[i];
                ids = ex.InputIds;
                segments.Add(ex.SegmentIds);
                pairLabels.Add(ex.Label);
            }
            else ids = (train ? _trainPacked! : _validPacked!)[i].InputIds;
            var (masked, target) = MlmMasking.Apply(ids, _maskProb, _vocab, _seed, epoch, i);
            inputs.Add(masked);
            labels.Add(target);
        }
        var bag = new TensorBag();
        var (idsT, maskT, width) = Batching.Inputs(inputs, Device, bag);                             // (B, T), (B, T)
        var labelsT = bag.Add(Batching.Ids(labels, width, Device, MlmMasking.Ignore));               // (B, T)
        var segT = Pairs ? bag.Add(Batching.Ids(segments, width, Device, 0)) : null;                 // (B, T)?
        var pairT = Pairs ? bag.Add(Batching.Labels(pairLabels, Device)) : null;                     // (B)?
        long maskedTargets = labels.Sum(l => l.LongCount(x => x != MlmMasking.Ignore));
        IReadOnlyList<long> counts = Pairs ? [maskedTargets, indices.Count] : [maskedTargets];
        return new MicroBatch(counts, () => _model.Loss(idsT, maskT, segT, labelsT, pairT), bag);
    }

    public override IReadOnlyList<string> EvalKeys => Pairs
        ? ["loss_sum", "count", "mlm.sum", "mlm.count", "mlm.correct", "pair.sum", "pair.count", "pair.correct"]
        : ["loss_sum", "count", "correct"];

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        if (!Pairs)
        {
            double n = Math.Max(1, s["count"]);
            return new Dictionary<string, double> { ["loss"] = s["loss_sum"] / n, ["perplexity"] = Math.Exp(s["loss_sum"] / n), ["accuracy"] = s["correct"] / n };
        }
        double m = Math.Max(1, s["mlm.count"]), p = Math.Max(1, s["pair.count"]);
        return new Dictionary<string, double>
        {
            ["loss"] = s["mlm.sum"] / m + s["pair.sum"] / p,
            ["perplexity"] = Math.Exp(s["mlm.sum"] / m),
            ["accuracy"] = s["mlm.correct"] / m,
            ["pair_accuracy"] = s["pair.correct"] / p,
        };
    }

    /// <summary>Unigram perplexity on the validation positions the model is scored on (the fixed validation masks).</summary>
    public override IReadOnlyDictionary<string, double> Baselines()
    {
        int[] Ids(int i, bool train) => Pairs ? (train ? _trainPairs! : _validPairs!)[i].InputIds : (train ? _trainPacked! : _validPacked!)[i].InputIds;
        var trainTokens = Enumerable.Range(0, TrainCount).Select(i => (IReadOnlyList<int>)Ids(i, true).Where(t => !SpecialTokens.IsSpecial(t)).ToArray());
        var validTargets = Enumerable.Range(0, ValidationCount).Select(i =>
            (IReadOnlyList<int>)MlmMasking.Apply(Ids(i, false), _maskProb, _vocab, _seed, -1, i).Labels.Where(t => t != MlmMasking.Ignore).ToArray());
        return UnigramBaseline.Metrics(trainTokens, validTargets, _vocab);
    }
}

/// <summary>Next-word prediction for the GPT decoder on packed sequences.</summary>
public sealed class CausalLmObjective(GptLanguageModel model, Device device, IIndexedDataset<LmExample> train, IIndexedDataset<LmExample> validation)
    : DatasetObjective<GptLanguageModel, LmExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<LmExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => data[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(rows.Select(r => r.InputIds[..r.Length]).ToList(), Device, bag);   // (B, T), (B, T)
        long targets = rows.Sum(r => (long)Math.Max(0, r.Length - 1)); // every real token but the first is predicted
        return new MicroBatch([targets], () => Net.Loss(idsT, maskT), bag);
    }

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        double n = Math.Max(1, s["count"]);
        return new Dictionary<string, double> { ["loss"] = s["loss_sum"] / n, ["perplexity"] = Math.Exp(s["loss_sum"] / n), ["accuracy"] = s["correct"] / n };
    }

    /// <summary>Unigram perplexity on exactly the targets the model is scored on: every real token after the first.</summary>
    public override IReadOnlyDictionary<string, double> Baselines()
    {
        static IEnumerable<IReadOnlyList<int>> Targets(IIndexedDataset<LmExample> d) =>
            Enumerable.Range(0, d.Count).Select(i => d[i]).Select(ex => (IReadOnlyList<int>)ex.InputIds[1..ex.Length]);
        return UnigramBaseline.Metrics(Targets(Train), Targets(Validation), Net.Backbone.Config.VocabSize);
    }
}

/// <summary>ELECTRA: generator MLM + λ·replaced-token detection on packed sequences.</summary>
public sealed class ElectraObjective(ElectraForPreTraining model, Device device, int vocabSize, double maskProb, ulong seed,
    IIndexedDataset<LmExample> train, IIndexedDataset<LmExample> validation) : DatasetObjective<ElectraForPreTraining, LmExample>(model, device, train, validation)
{
    protected override IMicroBatch Batch(IIndexedDataset<LmExample> data, IReadOnlyList<int> indices, int epoch)
    {
        var inputs = new List<int[]>();
        var labels = new List<int[]>();
        foreach (int i in indices)
        {
            var (masked, target) = MlmMasking.Apply(data[i].InputIds, maskProb, vocabSize, seed, epoch, i);
            inputs.Add(masked);
            labels.Add(target);
        }
        var bag = new TensorBag();
        var (idsT, maskT, width) = Batching.Inputs(inputs, Device, bag);                             // (B, T), (B, T)
        var labelsT = bag.Add(Batching.Ids(labels, width, Device, MlmMasking.Ignore)); // (B, T)
        long real = inputs.Sum(r => (long)r.Count(x => x != SpecialTokens.Pad));
        long maskedCount = labels.Sum(l => l.LongCount(x => x != MlmMasking.Ignore));
        // Generator samples depend only on (seed, epoch, first example), so a resumed run replays them.
        ulong rngSeed = SeededRandom.For(seed, (ulong)(indices.Count > 0 ? indices[0] : 0), stream: (ulong)(epoch + 2)).NextUInt64() >> 1;
        return new MicroBatch([real, maskedCount], () =>
        {
            using var rng = new Generator(rngSeed, Device);
            return Net.Loss(idsT, maskT, null, labelsT, rng);
        }, bag);
    }

    public override IReadOnlyList<string> EvalKeys => ["loss_sum", "count", "rtd.sum", "rtd.count", "rtd.correct", "mlm.sum", "mlm.count", "mlm.correct"];

    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s)
    {
        double r = Math.Max(1, s["rtd.count"]), m = Math.Max(1, s["mlm.count"]);
        return new Dictionary<string, double>
        {
            ["loss"] = s["loss_sum"] / Math.Max(1, s["count"]),
            ["rtd_accuracy"] = s["rtd.correct"] / r,
            ["generator_perplexity"] = Math.Exp(s["mlm.sum"] / m),
        };
    }
}
