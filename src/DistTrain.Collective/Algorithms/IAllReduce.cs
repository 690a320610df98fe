namespace DistTrain.Collective;

/// <summary>An in-place SUM all-reduce over one flat fp32 buffer; identical length on every rank.</summary>
/// <remarks>
/// Synchronous by design: call it from the device thread that owns the gradients. One call at a
/// time per group. On failure it throws <see cref="PeerFailedException"/> (or
/// <see cref="GroupClosedException"/>) and the group is unusable: form the next generation.
/// </remarks>
public interface IAllReduce
{
    /// <summary>Sums with the group's configured <see cref="DataPlaneOptions.Wire"/> format.</summary>
    AllReduceStats AllReduce(Span<float> buffer);

    /// <summary>Sums with <paramref name="wire"/> for this call only, e.g. fp32 for counts that must stay exact beside bf16 gradients.</summary>
    AllReduceStats AllReduce(Span<float> buffer, Wire.WireFormat wire);
}

/// <summary>What one all-reduce call moved and how long it took (for Prometheus and the bench).</summary>
public readonly record struct AllReduceStats(long Elements, int Buckets, long BytesSent, long BytesReceived, double Seconds)
{
    /// <summary>Algorithm bandwidth in bytes/s: the fp32 buffer size over the call time.</summary>
    public double AlgorithmBandwidth => Seconds > 0 ? Elements * sizeof(float) / Seconds : 0;
}
