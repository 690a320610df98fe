using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>
/// T5's relative position bias: one learned scalar per head for each bucket of the distance key − query. Small
/// distances get a bucket each, larger ones share logarithmically wider buckets up to <c>maxDistance</c>, beyond which
/// all distances share the last bucket, so the bias is defined at any length. Encoders use both signs (half the
/// buckets each); decoders only look back.
/// </summary>
public sealed class RelativePositionBias : nn.Module<long, long, Device, Tensor>
{
    private readonly Embedding bias;
    private readonly bool bidirectional;
    private readonly int buckets;
    private readonly int maxDistance;

    public RelativePositionBias(int buckets, int maxDistance, int heads, bool bidirectional, double initStd) : base(nameof(RelativePositionBias))
    {
        if (buckets < 4) throw new ArgumentException($"buckets must be >= 4, got {buckets}.", nameof(buckets));
        if (maxDistance < buckets / 2) throw new ArgumentException($"maxDistance ({maxDistance}) must be at least half the buckets ({buckets / 2}).", nameof(maxDistance));
        (this.buckets, this.maxDistance, this.bidirectional) = (buckets, maxDistance, bidirectional);
        bias = Init.Embedding(nn.Embedding(buckets, heads), initStd);
        RegisterComponents();
    }

    /// <summary>queryLength Tq, keyLength Tk → additive bias (1, nh, Tq, Tk) on <paramref name="device"/>.</summary>
    public override Tensor forward(long queryLength, long keyLength, Device device)
    {
        using var keys = keyLength.ToScalar();
        using var queries = queryLength.ToScalar();
        var relative = arange(keys, ScalarType.Int64, device).unsqueeze(0)
                       - arange(queries, ScalarType.Int64, device).unsqueeze(1);     // (Tq, Tk): key − query
        var index = Bucket(relative, bidirectional, buckets, maxDistance);                // (Tq, Tk)
        return bias.forward(index).permute(2, 0, 1).unsqueeze(0);                         // (1, nh, Tq, Tk)
    }

    /// <summary>T5's bucketing of key − query distances (Raffel et al. 2020; the reference implementation's formula).</summary>
    public static Tensor Bucket(Tensor relative, bool bidirectional, int buckets, int maxDistance)
    {
        var result = zeros_like(relative);                                                // (Tq, Tk)
        int n = buckets;
        if (bidirectional)
        {
            n /= 2;
            using var upper = n.ToScalar();
            result = result.add(relative.gt(Scalars.Zero).to(ScalarType.Int64) * upper, Scalars.One);                   // keys after the query use the upper half
            relative = relative.abs();
        }
        else
        {
            relative = (-relative).clamp_min(Scalars.Zero);                                          // a decoder only looks back
        }
        int exact = n / 2;
        using var exactScalar = exact.ToScalar();
        using var logRange = Math.Log((double)maxDistance / exact).ToScalar();
        using var logBuckets = (n - exact).ToScalar();
        using var lastBucket = (n - 1).ToScalar();
        var small = relative.lt(exactScalar);
        // Distances exact..maxDistance map logarithmically onto the remaining n − exact buckets.
        var large = (relative.to(ScalarType.Float64).clamp_min(Scalars.One) / exactScalar).log() / logRange * logBuckets;
        var largeBucket = large.to(ScalarType.Int64).add(exactScalar, Scalars.One).clamp_max(lastBucket);
        return result.add(where(small, relative, largeBucket), Scalars.One);                              // (Tq, Tk)
    }
}
