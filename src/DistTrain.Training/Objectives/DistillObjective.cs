using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>
/// A student classifier learning from a teacher's stored top-k probabilities (the label stage's output):
/// T²·KL at temperature T plus α·cross-entropy on the gold label. Validation scores the student against gold labels.
/// </summary>
public sealed class DistillObjective : Objective
{
    private readonly IClassifier _student;
    private readonly IIndexedDataset<ClassificationExample> _train, _validation;
    private readonly IReadOnlyList<SoftLabel> _labels;
    private readonly DistillationOptions _options;
    private readonly int _classes;

    public DistillObjective(IClassifier student, Device device, int classes, DistillationOptions options,
        IIndexedDataset<ClassificationExample> labelled, IReadOnlyList<SoftLabel> labels, IIndexedDataset<ClassificationExample> validation) : base(device)
    {
        if (student is not nn.Module) throw new ArgumentException("the student must be a module", nameof(student));
        if (labels.Count != labelled.Count)
            throw new InvalidDataException($"the label file has {labels.Count} examples but the dataset it labelled has {labelled.Count}; was the corpus or vocabulary changed?");
        for (int i = 0; i < labels.Count; i++)
            if (labels[i].Index != i) throw new InvalidDataException($"label record {i} is for example {labels[i].Index}");
        (_student, _classes, _options, _train, _labels, _validation) = (student, classes, options, labelled, labels, validation);
    }

    public override nn.Module Model => (nn.Module)_student;
    public override int TrainCount => _train.Count;
    public override int ValidationCount => _validation.Count;

    public override IMicroBatch TrainBatch(IReadOnlyList<int> indices, int epoch)
    {
        var rows = indices.Select(i => _train[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);   // (B, T), (B, T)
        // Unlabelled text has no gold label (−1): the hard-label term then takes the teacher's top class.
        var labelsT = bag.Add(Batching.Labels(indices.Select(i => _labels[i].Gold >= 0 ? _labels[i].Gold : _labels[i].Ids[0]), Device)); // (B)
        int k = _labels[0].Ids.Length;
        var topIds = bag.Add(torch.tensor(indices.SelectMany(i => _labels[i].Ids.Select(x => (long)x)).ToArray(), [indices.Count, k], ScalarType.Int64, Device)); // (B, k)
        var topProbs = bag.Add(torch.tensor(indices.SelectMany(i => _labels[i].Probs).ToArray(), [indices.Count, k], ScalarType.Float32, Device));              // (B, k)
        return new MicroBatch([indices.Count], () =>
            DistillationLoss.Compute(_student.Classify(idsT, maskT), new TeacherSignal.TopK(topIds, topProbs), _options.Alpha > 0 ? labelsT : null, _options), bag);
    }

    public override IMicroBatch ValidationBatch(IReadOnlyList<int> indices)
    {
        var rows = indices.Select(i => _validation[i]).ToList();
        var bag = new TensorBag();
        var (idsT, maskT, _) = Batching.Inputs(rows.Select(r => r.InputIds).ToList(), Device, bag);   // (B, T), (B, T)
        var labelsT = bag.Add(Batching.Labels(rows.Select(r => r.Label), Device));
        return new MicroBatch([rows.Count], () =>
        {
            var logits = _student.Classify(idsT, maskT);
            return ClassificationMetrics.WithConfusion(ClassificationLosses.Sequence(logits, labelsT), logits, labelsT, _classes);
        }, bag);
    }

    public override IReadOnlyList<string> EvalKeys => ClassificationMetrics.Keys(_classes);
    public override IReadOnlyDictionary<string, double> Metrics(IReadOnlyDictionary<string, double> s) => ClassificationMetrics.From(s, _classes);
}
