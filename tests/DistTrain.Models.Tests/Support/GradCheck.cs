using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests;

/// <summary>Compares autograd gradients with float64 central differences at a few random entries of each tensor.</summary>
internal static class GradCheck
{
    /// <summary>
    /// loss must be a float64 scalar function of the tensors in wrt (inputs with requires_grad and/or parameters).
    /// Checks up to samplesPerTensor entries per tensor; entries are perturbed in place and restored.
    /// </summary>
    public static void Check(Func<Tensor> loss, IReadOnlyList<(string Name, Tensor Value)> wrt, int samplesPerTensor = 5, double eps = 1e-6, int seed = 7)
    {
        var tensors = wrt.Select(w => w.Value).ToList();
        Assert.All(tensors, t => Assert.Equal(ScalarType.Float64, t.dtype));
        IList<Tensor> analytic;
        using (var l = loss()) analytic = torch.autograd.grad([l], tensors, allow_unused: true);
        var rng = new Random(seed);
        int checkedEntries = 0;
        using var _ = no_grad();
        for (int i = 0; i < tensors.Count; i++)
        {
            var flat = tensors[i].detach().view(-1);                     // shares storage with the tensor under test
            var grad = analytic[i] is null ? zeros_like(flat) : analytic[i].reshape(-1);
            long n = flat.shape[0];
            for (int s = 0; s < Math.Min(samplesPerTensor, n); s++)
            {
                long idx = rng.NextInt64(n);
                double original = flat[idx].item<double>();
                flat[idx].fill_(original + eps);
                double plus = loss().item<double>();
                flat[idx].fill_(original - eps);
                double minus = loss().item<double>();
                flat[idx].fill_(original);
                double numeric = (plus - minus) / (2 * eps);
                double auto = grad[idx].item<double>();
                double tolerance = 1e-6 + 1e-5 * Math.Abs(numeric);
                Assert.True(Math.Abs(numeric - auto) <= tolerance,
                    $"{wrt[i].Name}[{idx}]: autograd {auto:G10} vs finite difference {numeric:G10}");
                checkedEntries++;
            }
        }
        Assert.True(checkedEntries > 0);
    }

    /// <summary>Every named parameter of a module, for <see cref="Check"/>.</summary>
    public static IEnumerable<(string, Tensor)> ParametersOf(nn.Module module, string prefix = "")
        => module.named_parameters().Select(p => (prefix + p.name, (Tensor)p.parameter));

    /// <summary>A fixed random weighting of an output so every output entry influences the scalar being checked.</summary>
    public static Func<Tensor, Tensor> Projection(long[] shape, int seed = 99)
    {
        var g = new Generator((ulong)seed);
        var w = randn(shape, ScalarType.Float64, generator: g);
        return y => (y * w).sum();
    }
}

/// <summary>Tensor comparisons for assertions (TorchSharp's equal() is element-wise).</summary>
internal static class Tensors
{
    /// <summary>Same shape and every element equal.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
