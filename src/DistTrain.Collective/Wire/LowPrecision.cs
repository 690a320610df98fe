using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace DistTrain.Collective.Wire;

/// <summary>fp32 ↔ bf16 / fp16 conversions, round-to-nearest-even, vectorised.</summary>
public static class LowPrecision
{
    /// <summary>Rounds one float to bf16 bits (nearest, ties to even; NaN stays NaN, quiet).</summary>
    public static ushort ToBFloat16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        // A NaN whose payload lives only in the low 16 bits would truncate to Inf: force the quiet bit.
        if (float.IsNaN(value)) return (ushort)((u >> 16) | 0x0040);
        // Adding 0x7FFF plus the lowest kept bit rounds to nearest with ties to even; a carry into the
        // exponent is the correct result (including overflow of the largest finite values to Inf).
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>Widens bf16 bits to the float they represent (exact).</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Rounds every element of <paramref name="src"/> to bf16.</summary>
    public static void ToBFloat16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination too short.", nameof(dst));
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<uint>.Count;
            var srcU = MemoryMarshal.Cast<float, uint>(src);
            var one = Vector<uint>.One;
            var bias = new Vector<uint>(0x7FFFu);
            var quiet = new Vector<uint>(0x0040u);
            for (; i <= src.Length - 2 * w; i += 2 * w)
            {
                var lo = RoundHalf(new Vector<float>(src.Slice(i)), new Vector<uint>(srcU.Slice(i)));
                var hi = RoundHalf(new Vector<float>(src.Slice(i + w)), new Vector<uint>(srcU.Slice(i + w)));
                Vector.Narrow(lo, hi).CopyTo(dst.Slice(i));
            }

            Vector<uint> RoundHalf(Vector<float> f, Vector<uint> u)
            {
                var rounded = Vector.ShiftRightLogical(u + bias + (Vector.ShiftRightLogical(u, 16) & one), 16);
                var nan = Vector.OnesComplement(Vector.AsVectorUInt32(Vector.Equals(f, f)));
                return Vector.ConditionalSelect(nan, Vector.ShiftRightLogical(u, 16) | quiet, rounded);
            }
        }
        for (; i < src.Length; i++) dst[i] = ToBFloat16(src[i]);
    }

    /// <summary>Widens bf16 values to fp32 (exact).</summary>
    public static void FromBFloat16(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination too short.", nameof(dst));
        int i = 0;
        var dstU = MemoryMarshal.Cast<float, uint>(dst);
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<ushort>.Count;
            for (; i <= src.Length - w; i += w)
            {
                Vector.Widen(new Vector<ushort>(src.Slice(i)), out var lo, out var hi);
                Vector.ShiftLeft(lo, 16).CopyTo(dstU.Slice(i));
                Vector.ShiftLeft(hi, 16).CopyTo(dstU.Slice(i + Vector<uint>.Count));
            }
        }
        for (; i < src.Length; i++) dstU[i] = (uint)src[i] << 16;
    }

    /// <summary>Rounds to IEEE fp16 (nearest, ties to even; overflow to ±Inf).</summary>
    public static void ToHalf(ReadOnlySpan<float> src, Span<Half> dst) => TensorPrimitives.ConvertToHalf(src, dst);

    /// <summary>Widens IEEE fp16 to fp32 (exact).</summary>
    public static void FromHalf(ReadOnlySpan<Half> src, Span<float> dst) => TensorPrimitives.ConvertToSingle(src, dst);
}
