namespace DistTrain.Contracts.Specs;

/// <summary>How gradients are summed across workers.</summary>
public enum Aggregation
{
    /// <summary>Every worker sends to one coordinator, which averages and broadcasts. Simple, fine for few workers.</summary>
    Coordinator,
    /// <summary>Ring all-reduce: bandwidth per worker is constant in the worker count.</summary>
    Ring,
}

/// <summary>Number format of gradients on the wire; optimiser state always stays fp32.</summary>
public enum WireFormat { Fp32, Bf16, Fp16 }

/// <summary>Data-parallel settings of one stage.</summary>
/// <remarks>
/// Workers are a range, not a count, so the same spec runs in-process (the runner uses <see cref="MinWorkers"/>
/// local workers) and on a cluster (the scheduler picks any count in range and may rescale within it).
/// </remarks>
/// <param name="ChecksumEvery">Steps between cross-worker parameter checksums that catch silent divergence; 0 disables.</param>
/// <param name="MaxRestarts">Worker failures the stage survives (restarting from its last checkpoint) before it fails.</param>
/// <param name="GradientBucketMb">
/// Size of the gradient buckets that are all-reduced while backward still runs (last transformer block first, as DDP's
/// bucket_cap_mb); 0 reduces every gradient once, after backward.
/// </param>
public sealed record DistributedSpec(
    int MinWorkers = 1,
    int MaxWorkers = 1,
    Aggregation Aggregation = Aggregation.Coordinator,
    WireFormat Wire = WireFormat.Fp32,
    int ChecksumEvery = 0,
    int MaxRestarts = 3,
    double GradientBucketMb = DistributedSpec.DefaultGradientBucketMb)
{
    /// <summary>PyTorch DDP's default bucket_cap_mb.</summary>
    public const double DefaultGradientBucketMb = 25;

    /// <summary>The bucket size in bytes.</summary>
    public long GradientBucketBytes => (long)(GradientBucketMb * 1024 * 1024);
}
