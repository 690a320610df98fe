namespace DistTrain.Collective.Wire;

/// <summary>How float elements travel between processes; accumulation is always fp32.</summary>
public enum WireFormat : byte
{
    /// <summary>IEEE binary32, sent as-is: results are exact sums.</summary>
    Float32 = 0,
    /// <summary>bfloat16 (8-bit exponent): same range as fp32, ~3 significant digits; halves the bytes.</summary>
    BFloat16 = 1,
    /// <summary>IEEE binary16: more precision than bf16 but overflows above 65504.</summary>
    Float16 = 2,
}

/// <summary>Sizes and conversions for <see cref="WireFormat"/>.</summary>
public static class WireFormats
{
    public static int BytesPerElement(this WireFormat format) => format == WireFormat.Float32 ? 4 : 2;

    /// <summary>Encodes <paramref name="src"/> into <paramref name="dst"/> (length src.Length * BytesPerElement).</summary>
    public static void Encode(this WireFormat format, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (format)
        {
            case WireFormat.Float32: System.Runtime.InteropServices.MemoryMarshal.AsBytes(src).CopyTo(dst); break;
            case WireFormat.BFloat16: LowPrecision.ToBFloat16(src, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case WireFormat.Float16: LowPrecision.ToHalf(src, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(dst)); break;
            default: throw new ArgumentOutOfRangeException(nameof(format));
        }
    }

    /// <summary>Decodes wire bytes into fp32 values.</summary>
    public static void Decode(this WireFormat format, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (format)
        {
            case WireFormat.Float32: src.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst)); break;
            case WireFormat.BFloat16: LowPrecision.FromBFloat16(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case WireFormat.Float16: LowPrecision.FromHalf(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src), dst); break;
            default: throw new ArgumentOutOfRangeException(nameof(format));
        }
    }
}
