using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Engine;

/// <summary>
/// One managed float buffer holding every gradient back to back, in the order given (the bucket order of
/// <see cref="GradientBuckets"/>), plus trailing scalars that ride the last all-reduce (the loss and a non-finite flag).
/// The buffer is shared zero-copy with a CPU tensor. On a GPU, packing is a device-to-host copy and unpacking the
/// way back. On the CPU the parameters' gradients ARE slices of the buffer (PyTorch DDP's gradient_as_bucket_view):
/// <see cref="BindGradients"/> points every .grad at its slot, backward accumulates into it in place, the
/// all-reduce sums it in place, and clipping and the optimizer read it there: no copy in either direction.
/// Packing then only checks that each gradient is still its slot (autograd may replace a .grad) and copies the
/// ones that are not.
/// </summary>
public sealed class GradientBuffer : IDisposable
{
    public const int Trailer = 2;
    private readonly Parameter[] _params;
    private readonly long[] _offsets;
    private readonly Tensor _flat;   // (P + Trailer,) float32, CPU, aliases Data
    private readonly Tensor[]? _slots;   // on the CPU: parameter i's gradient, a view of _flat shaped like it
    private readonly IntPtr _base;       // _flat's storage address

    public GradientBuffer(IEnumerable<Parameter> parameters)
    {
        _params = parameters.ToArray();
        _offsets = new long[_params.Length + 1];
        for (int i = 0; i < _params.Length; i++) _offsets[i + 1] = _offsets[i] + _params[i].numel();
        ParameterCount = _offsets[^1];
        if (ParameterCount + Trailer > int.MaxValue) throw new NotSupportedException("more than 2^31 gradient elements");
        Data = new float[ParameterCount + Trailer];
        _flat = torch.from_array(Data);
        _base = _flat.storage<float>().data_ptr();
        if (_params.All(p => p.device_type == DeviceType.CPU && p.dtype == ScalarType.Float32))
            _slots = _params.Select((p, i) => _flat.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]).view(p.shape)).ToArray();
    }

    /// <summary>True when the gradients live in the buffer (CPU float32 parameters): no packing or unpacking copies.</summary>
    public bool GradientsInPlace => _slots is not null;

    /// <summary>
    /// Instead of the optimizer's zero_grad: zeroes the buffer and points every parameter's .grad at its slot, so
    /// backward accumulates there. Without slots (GPU), zeroes the gradients where they are.
    /// </summary>
    public void BindGradients(Action zeroGrad)
    {
        if (_slots is null) { zeroGrad(); return; }
        _flat.zero_();
        for (int i = 0; i < _params.Length; i++) _params[i].grad = _slots[i];
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

    /// <summary>
    /// Puts the gradients of parameters [first, end) (zeros where none) into their slots of <see cref="Data"/>: with
    /// bound gradients, only those autograd replaced are copied (and bound again).
    /// </summary>
    public void PackGradients(int first, int end)
    {
        using var scope = NewDisposeScope();
        for (int i = first; i < end; i++)
        {
            if (_slots is not null && IsSlot(i)) continue;
            var slice = _flat.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]);   // (n,)
            var g = _params[i].grad;
            if (g is null) slice.zero_();
            else slice.copy_(g.detach().reshape(-1));
            if (_slots is not null) _params[i].grad = _slots[i];
        }
    }

    /// <summary>Whether parameter i's .grad is its slot of the buffer (same storage, same offset).</summary>
    private bool IsSlot(int i)
    {
        using var g = _params[i].grad;
        return g is not null && g.storage<float>().data_ptr() == _base && g.storage_offset() == _offsets[i] && g.is_contiguous();
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

    /// <summary>Writes the reduced gradients, multiplied by <paramref name="scale"/>, back into each parameter's grad (with bound gradients they are there already).</summary>
    public void Unpack(double scale)
    {
        using var scope = NewDisposeScope();
        var grads = _flat.narrow(0, 0, ParameterCount);
        if (scale != 1.0)
        {
            using var factor = scale.ToScalar();
            grads.mul_(factor);
        }
        if (_slots is not null) return;   // every .grad was checked to be its slot when it was packed
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            var slice = grads.narrow(0, _offsets[i], _offsets[i + 1] - _offsets[i]).view(p.shape);
            if (p.grad is null) p.grad = slice.to(p.device).clone();
            else p.grad.copy_(slice);
        }
    }

    public void Dispose()
    {
        if (_slots is not null)
            foreach (var slot in _slots) slot.Dispose();
        _flat.Dispose();
    }
}
