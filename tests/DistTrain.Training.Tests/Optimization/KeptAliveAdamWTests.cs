using DistTrain.Training.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Optimization;

/// <summary>The trainer's AdamW against TorchSharp's own: the same updates, bit for bit, so replacing it changed no result.</summary>
public sealed class KeptAliveAdamWTests
{
    private static float[] Run(Func<IEnumerable<AdamW.ParamGroup>, OptimizerHelper> create)
    {
        torch.manual_seed(5);
        var model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3));
        var parameters = model.parameters().ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(parameters.Where(p => p.dim() >= 2), new AdamW.Options { weight_decay = 0.1 }),
            new(parameters.Where(p => p.dim() < 2), new AdamW.Options { weight_decay = 0 }),
        };
        using var optimizer = create(groups);
        var x = torch.randn(16, 6);
        var y = torch.randn(16, 3);
        for (int step = 0; step < 60; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            ((nn.Module<Tensor, Tensor>)model).forward(x).sub(y).pow(2).mean().backward();
            foreach (var group in optimizer.ParamGroups) group.LearningRate = 1e-2 * (1 + step % 7) / 7;   // a schedule
            optimizer.step();
        }
        return [.. parameters.SelectMany(p => p.detach().data<float>().ToArray())];
    }

    [Fact]
    public void Sixty_steps_match_TorchSharps_AdamW_bit_for_bit()
    {
        var reference = Run(groups => optim.AdamW(groups, 1e-2, 0.9, 0.98, 1e-8, 0.1));
        var ours = Run(groups => new KeptAliveAdamW(groups, 1e-2, 0.9, 0.98, 1e-8, 0.1));
        Assert.Equal(reference.Select(BitConverter.SingleToInt32Bits), ours.Select(BitConverter.SingleToInt32Bits));
        Assert.Contains(reference, w => w != 0);
    }
}
