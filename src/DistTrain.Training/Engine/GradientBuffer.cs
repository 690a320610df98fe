using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Engine;

/// <summary>
/// One managed float buffer holding every gradient back to back, in the order given (the bucket order of
/// <see cref="GradientBuckets"/>), plus trailing scalars that ride the last all-reduce (the loss and a non-finite flag).
/// The buffer is shared zero-copy with a CPU tensor, so packing is a tensor copy (device to host on GPU).
/// </summary>
public sealed class GradientBuffer : IDisposable
{
    public const int Trailer = 2;
    private readonly Parameter[] _params;
    private readonly long[] _offsets;
    private readonly Tensor _flat;   // (P + Trailer,) float32, CPU, aliases Data

    public GradientBuffer(IEnumerable<Parameter> parameters)
    {
        _params = parameters.ToArray();
        _offsets = new long[_params.Length + 1];
        for (int i = 0; i < _params.Length; i++) _offsets[i + 1] = _offsets[i] + _params[i].numel();
        ParameterCount = _offsets[^1];
        if (ParameterCount + Trailer > int.MaxValue) throw new NotSupportedException("more than 2^31 gradient elements");
        Data = new float[ParameterCount + Trailer];
        _flat = torch.from_array(Data);
    }

    public float[] Data { get; }
    public long ParameterCount { get; }
    public int Length => Data.Length;

    /// <summary>Where parameter i's gradient starts in <see cref="Data"/> (i = parameter count: where the trailer starts).</summary>
    public long Offset(int parameter) => _offsets[parameter];

    /// <summary>Copies every parameter's gradient (zeros where none), the loss and the flag into <see cref="Data"/>.</summary>
    public void Pack(double lossSum, bool nonFinite)
    {
        PackGradients(0, _params.Length);
        PackTrailer(lossSum, nonFinite);
    }

    /// <summary>Copies the gradients of parameters [first, end) (zeros where none) into their slots of <see cref="Data"/>.</summary>
    public void PackGradients(int first, int end)
    {
        using var scope = NewDisposeScope();
        for (int i = first; i < end; i++)
        {
            var slice = _flat.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]);   // (n,)
            var g = _params[i].grad;
            if (g is null) slice.zero_();
            else slice.copy_(g.detach().reshape(-1));
        }
    }

    /// <summary>Writes the loss sum and the non-finite flag after the gradients.</summary>
    public void PackTrailer(double lossSum, bool nonFinite)
    {
        long p = ParameterCount;
        Data[p] = (float)lossSum;
        Data[p + 1] = nonFinite ? 1f : 0f;
    }

    public double LossSum => Data[ParameterCount];
    public bool AnyNonFinite => Data[ParameterCount + 1] > 0;

    /// <summary>Writes the reduced gradients, multiplied by <paramref name="scale"/>, back into each parameter's grad.</summary>
    public void Unpack(double scale)
    {
        using var scope = NewDisposeScope();
        var grads = _flat.narrow(0, 0, ParameterCount);
        using var factor = scale.ToScalar();
        grads.mul_(factor);
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            var slice = grads.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]).view(p.shape);
            if (p.grad is null) p.grad = slice.to(p.device).clone();
            else p.grad.copy_(slice);
        }
    }

    public void Dispose() => _flat.Dispose();
}
