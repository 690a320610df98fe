using DistTrain.Collective.Wire;

namespace DistTrain.Collective.Tests.Wire;

public sealed class LowPrecisionTests
{
    private static float F(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    [Theory]
    // Hand-computed: bf16 keeps the top 16 bits of the fp32 pattern, rounded to nearest, ties to even.
    [InlineData(0x3F800000u, 0x3F80)] // 1.0
    [InlineData(0xBF800000u, 0xBF80)] // -1.0
    [InlineData(0x00000000u, 0x0000)] // +0
    [InlineData(0x80000000u, 0x8000)] // -0
    [InlineData(0x3F808000u, 0x3F80)] // 1 + 2^-8: exact tie, kept bit 0 is even -> down
    [InlineData(0x3F818000u, 0x3F82)] // 1 + 3*2^-8: tie, kept bit odd -> up to even
    [InlineData(0x3F808001u, 0x3F81)] // just above the tie -> up
    [InlineData(0x3F807FFFu, 0x3F80)] // just below the tie -> down
    [InlineData(0x40490FDBu, 0x4049)] // pi -> 3.140625
    [InlineData(0x7F800000u, 0x7F80)] // +Inf
    [InlineData(0xFF800000u, 0xFF80)] // -Inf
    [InlineData(0x7F7FFFFFu, 0x7F80)] // fp32 max rounds up to Inf (beyond bf16 max + half ulp)
    [InlineData(0x7F7F7FFFu, 0x7F7F)] // stays the largest finite bf16
    [InlineData(0x00000001u, 0x0000)] // smallest fp32 subnormal -> +0
    [InlineData(0x00018000u, 0x0002)] // subnormal tie with odd kept bit -> up to even
    [InlineData(0x00010000u, 0x0001)] // exactly the smallest bf16 subnormal
    [InlineData(0x807F8000u, 0x8080)] // negative subnormal tie (kept 0x7F odd) carries into the smallest normal
    public void BFloat16_rounds_to_nearest_even(uint input, int expected)
    {
        Assert.Equal((ushort)expected, LowPrecision.ToBFloat16(F(input)));
        // The vector path must agree with the scalar one: put the value in every lane position of a long span.
        var src = Enumerable.Repeat(F(input), 77).ToArray();
        var dst = new ushort[77];
        LowPrecision.ToBFloat16(src, dst);
        Assert.All(dst, d => Assert.Equal((ushort)expected, d));
    }

    [Theory]
    [InlineData(0x7FC00000u)] // quiet NaN
    [InlineData(0x7F800001u)] // signalling NaN whose payload is only in the low bits: truncation would give Inf
    [InlineData(0xFFC00001u)] // negative NaN
    public void BFloat16_keeps_NaN_NaN(uint input)
    {
        var src = Enumerable.Repeat(F(input), 40).ToArray();
        var dst = new ushort[40];
        LowPrecision.ToBFloat16(src, dst);
        Assert.All(dst, d => Assert.True(float.IsNaN(LowPrecision.FromBFloat16(d))));
        Assert.True(float.IsNaN(LowPrecision.FromBFloat16(LowPrecision.ToBFloat16(F(input)))));
    }

    [Theory]
    // Hand-computed IEEE binary16: 10 fraction bits, max 65504, smallest subnormal 2^-24.
    [InlineData(1.0f, 0x3C00)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(1.00048828125f, 0x3C00)] // 1 + 2^-11: tie, even -> down
    [InlineData(1.00146484375f, 0x3C02)] // 1 + 3*2^-11: tie, odd -> up
    [InlineData(65504f, 0x7BFF)]         // fp16 max
    [InlineData(65519f, 0x7BFF)]         // below the overflow tie
    [InlineData(65520f, 0x7C00)]         // the tie above max rounds to Inf
    [InlineData(5.9604644775390625E-08f, 0x0001)] // 2^-24, smallest subnormal
    [InlineData(2.98023223876953125E-08f, 0x0000)] // 2^-25: tie between 0 and 2^-24 -> even (0)
    [InlineData(8.94069671630859375E-08f, 0x0002)] // 3*2^-25: tie between 1 and 2 ulps -> even (2)
    [InlineData(float.PositiveInfinity, 0x7C00)]
    [InlineData(float.NegativeInfinity, 0xFC00)]
    public void Half_rounds_to_nearest_even(float input, int expected)
    {
        var src = Enumerable.Repeat(input, 77).ToArray();
        var dst = new Half[77];
        LowPrecision.ToHalf(src, dst);
        Assert.All(dst, h => Assert.Equal((ushort)expected, BitConverter.HalfToUInt16Bits(h)));
    }

    [Fact]
    public void Half_keeps_NaN_NaN()
    {
        var dst = new Half[1];
        LowPrecision.ToHalf([float.NaN], dst);
        Assert.True(Half.IsNaN(dst[0]));
    }

    [Theory]
    [InlineData(WireFormat.BFloat16, 1.0 / 256)]  // 8 significant bits: half an ulp is 2^-8 relative
    [InlineData(WireFormat.Float16, 1.0 / 2048)]  // 11 significant bits
    public void Round_trip_error_is_within_half_an_ulp(WireFormat format, double bound)
    {
        var rng = new Random(7);
        // Stay inside fp16's normal range so the relative bound holds for both formats.
        var src = Enumerable.Range(0, 10_001)
            .Select(_ => (float)((rng.Next(2) * 2 - 1) * (0.5 + rng.NextDouble() / 2) * Math.Pow(2, rng.Next(-12, 14)))).ToArray();
        var wire = new byte[src.Length * 2];
        var back = new float[src.Length];
        format.Encode(src, wire);
        format.Decode(wire, back);
        for (int i = 0; i < src.Length; i++)
            Assert.True(Math.Abs(back[i] - src[i]) <= bound * Math.Abs(src[i]), $"{format}: {src[i]} -> {back[i]}");
        // Rounding is idempotent: what comes back is already representable.
        var again = new float[src.Length];
        format.Encode(back, wire);
        format.Decode(wire, again);
        Assert.Equal(back, again);
    }
}
