using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Objectives;
using DistTrain.Training.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Engine;

/// <summary>The training step against hand computations: normalisation, NaN handling, composite losses.</summary>
public sealed class TrainerTests
{
    private static (nn.Module Model, Parameter W) Linear()
    {
        torch.manual_seed(3);
        var model = nn.Linear(2, 1, hasBias: false);
        return (model, model.parameters().Single());
    }

    private static IMicroBatch Squared(nn.Module model, float[] x, float[] y)
    {
        var bag = new TensorBag();
        var xt = bag.Add(torch.tensor(x, [x.Length / 2, 2]));
        var yt = bag.Add(torch.tensor(y, [y.Length, 1]));
        return new MicroBatch([y.Length], () => new LossTerms(((nn.Module<Tensor, Tensor>)model).forward(xt).sub(yt).pow(2).sum(), y.Length), bag);
    }

    [Fact]
    public void The_gradient_is_the_mean_over_all_targets_of_all_micro_batches()
    {
        var (model, w) = Linear();
        using var trainer = new Trainer(model, new TrainerOptions(new LearningRateSchedule(0.0, 0, 1, "constant"), WeightDecay: 0, ClipNorm: 0), LocalReducer.Instance);
        float[] w0 = w.detach().data<float>().ToArray();
        // Micro-batch 1 has 1 target, micro-batch 2 has 3: the mean must weight all 4 equally.
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        float[] y = [1, 0, 2, 1];
        var report = trainer.Step(0, [Squared(model, x[..2], y[..1]), Squared(model, x[2..], y[1..])]);
        // d/dw mean((x·w − y)²) = 2/N Σ (x·w − y) x
        var expected = new double[2];
        for (int n = 0; n < 4; n++)
        {
            double r = x[2 * n] * w0[0] + x[2 * n + 1] * w0[1] - y[n];
            expected[0] += 2 * r * x[2 * n] / 4;
            expected[1] += 2 * r * x[2 * n + 1] / 4;
        }
        var grad = w.grad!.data<float>().ToArray();
        Assert.Equal(expected[0], grad[0], 4);
        Assert.Equal(expected[1], grad[1], 4);
        Assert.Equal(4, report.Targets);
        double loss = Enumerable.Range(0, 4).Sum(n => Math.Pow(x[2 * n] * w0[0] + x[2 * n + 1] * w0[1] - y[n], 2)) / 4;
        Assert.Equal(loss, report.Loss, 3);
    }

    [Fact]
    public void A_NaN_loss_skips_the_update_and_says_so()
    {
        var (model, w) = Linear();
        using var trainer = new Trainer(model, new TrainerOptions(new LearningRateSchedule(0.1, 0, 1, "constant")), LocalReducer.Instance);
        float[] before = w.detach().data<float>().ToArray();
        var e = Assert.Throws<NonFiniteLossException>(() => trainer.Step(5, [Squared(model, [1, 2], [float.NaN])]));
        Assert.Equal(5, e.Step);
        Assert.Equal(before, w.detach().data<float>().ToArray());
    }

    [Fact]
    public void Declared_and_counted_targets_must_agree()
    {
        var (model, _) = Linear();
        using var trainer = new Trainer(model, new TrainerOptions(new LearningRateSchedule(0.1, 0, 1, "constant")), LocalReducer.Instance);
        var bag = new TensorBag();
        var x = bag.Add(torch.ones(1, 2));
        var lying = new MicroBatch([3], () => new LossTerms(((nn.Module<Tensor, Tensor>)model).forward(x).sum(), 1), bag);
        Assert.Throws<InvalidOperationException>(() => trainer.Step(0, [lying]));
    }
}
