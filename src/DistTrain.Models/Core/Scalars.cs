using TorchSharp;

namespace DistTrain.Models;

/// <summary>
/// Constant scalar operands, created once and rooted for the life of the process.
/// </summary>
/// <remarks>
/// Why: a <see cref="Scalar"/> converted implicitly inside a call (<c>ids.ne(0)</c>, <c>x * 0.5</c>) is referenced by
/// nothing once its native handle is passed, so the GC may finalize it — freeing the native value — while libtorch still
/// reads it (seen under load as "Unknown scalar type" in THSTensor_ne_scalar). A static field keeps it alive; values
/// known only at run time are <c>using var s = v.ToScalar();</c> locals instead. NativeTemporariesTests finds new ones.
/// The types match the literals they replace (int 0 stays an int scalar), so results are unchanged bit for bit.
/// </remarks>
public static class Scalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar Two = 2.ToScalar();
    public static readonly Scalar ZeroReal = 0.0.ToScalar();
    public static readonly Scalar Half = 0.5.ToScalar();
    public static readonly Scalar OneReal = 1.0.ToScalar();

    /// <summary>The label that loss functions skip (<see cref="LanguageModelLosses.IgnoreIndex"/>).</summary>
    public static readonly Scalar IgnoreIndex = LanguageModelLosses.IgnoreIndex.ToScalar();

    /// <summary>Negative infinity, for logits that must never be sampled.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();
}
