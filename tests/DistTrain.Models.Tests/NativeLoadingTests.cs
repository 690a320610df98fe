using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests;

/// <summary>Proves the native libtorch shim loads on this host (see build/TorchSharpNative.targets) and that a module trains.</summary>
public sealed class NativeLoadingTests
{
    [Fact]
    public void A_linear_model_trains_one_step_and_the_loss_falls()
    {
        torch.manual_seed(1234);
        var model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1));
        var opt = optim.SGD(model.parameters(), 0.1);
        using var x = randn(64, 8);
        using var y = x.sum(1, keepdim: true);                   // (64, 1) a target the model can fit

        float Loss() { using var _ = NewDisposeScope(); return nn.functional.mse_loss(model.forward(x), y).item<float>(); }
        float before = Loss();
        for (int i = 0; i < 5; i++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var loss = nn.functional.mse_loss(model.forward(x), y);
            loss.backward();
            opt.step();
        }
        float after = Loss();
        Assert.True(float.IsFinite(before) && float.IsFinite(after));
        Assert.True(after < before, $"loss did not fall: {before} -> {after}");
    }
}
