using System.Net;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>Which all-reduce a job uses; chosen per job by the control plane.</summary>
public enum AllReduceAlgorithm
{
    /// <summary>Reduce-scatter then all-gather around the workers; nothing central carries gradient bytes.</summary>
    Ring = 0,
    /// <summary>Every worker sends to a <see cref="CoordinatorReducer"/> that sums in rank order and sends the sum back.</summary>
    Coordinator = 1,
}

/// <summary>
/// One rank's view of a group, as the control plane hands it out: who I am, who the others are,
/// and the job/generation that every connection must prove it belongs to, with the generation's <see cref="Secret"/>.
/// </summary>
/// <param name="Peers">Every rank's data-plane endpoint, indexed by rank (this rank's own entry is ignored). Unused in coordinator mode.</param>
/// <param name="Reducer">The reducer's endpoint; required in coordinator mode.</param>
public sealed record GroupSpec(
    string JobId, long Generation, int Rank, int WorldSize, IReadOnlyList<EndPoint> Peers,
    AllReduceAlgorithm Algorithm = AllReduceAlgorithm.Ring, EndPoint? Reducer = null)
{
    /// <summary>The rank the reducer uses in handshakes and in <see cref="PeerFailedException.Rank"/>.</summary>
    public const int ReducerRank = -1;

    /// <summary>The generation's secret, from the coordinator; every link proves it in its handshake and keys its frame tags with it.</summary>
    public required GroupSecret Secret { get; init; }

    public void Validate()
    {
        if (string.IsNullOrEmpty(JobId)) throw new ArgumentException("JobId is required.");
        if (Secret is null) throw new ArgumentException("The group secret is required.");
        if (WorldSize < 1) throw new ArgumentException("WorldSize must be at least 1.");
        if (Rank < 0 || Rank >= WorldSize) throw new ArgumentException($"Rank {Rank} outside 0..{WorldSize - 1}.");
        if (Algorithm == AllReduceAlgorithm.Ring && Peers.Count != WorldSize)
            throw new ArgumentException($"Ring needs {WorldSize} peer endpoints, got {Peers.Count}.");
        if (Algorithm == AllReduceAlgorithm.Coordinator && Reducer is null)
            throw new ArgumentException("Coordinator mode needs the reducer endpoint.");
    }

    /// <summary>Parses "host:port" (IPv4, [IPv6] or DNS name) as the control plane sends it.</summary>
    public static EndPoint ParseEndPoint(string hostPort)
    {
        if (IPEndPoint.TryParse(hostPort, out var ip) && ip.Port != 0) return ip;
        int colon = hostPort.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(hostPort[(colon + 1)..], out int port)) throw new FormatException($"Not host:port: '{hostPort}'.");
        return new DnsEndPoint(hostPort[..colon], port);
    }
}

/// <summary>Timeouts and tuning of the data plane; defaults suit a LAN or loopback.</summary>
public sealed record DataPlaneOptions
{
    /// <summary>Longest wait for every link of a group to be connected and handshaken.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Longest any single send or receive inside a collective may block. A rank that enters a
    /// collective this much later than its neighbours is treated as failed, so keep it above the worst straggler.
    /// </summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>After a local error, how long to wait for peers' reports before naming the culprit.</summary>
    public TimeSpan FailureGrace { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Gradient bytes (fp32) per bucket; the flat buffer is cut into buckets that are pipelined.</summary>
    public int BucketBytes { get; init; } = 4 << 20;

    /// <summary>Largest single socket write/read of fp32 data; the unit the ring pipelines at.</summary>
    public int SegmentBytes { get; init; } = 512 << 10;

    public WireFormat Wire { get; init; } = WireFormat.Float32;

    /// <summary>
    /// Tag on every data frame, keyed per connection from the group secret. Both ends must agree (the handshake checks).
    /// AES-GMAC by default: on the project's machine it cost little bus bandwidth where HMAC-SHA256 cost a lot (docs/benchmarks.md).
    /// </summary>
    public FrameIntegrity Integrity { get; init; } = FrameIntegrity.AesGmac;

    /// <summary>SO_SNDBUF/SO_RCVBUF for data sockets; 0 keeps the OS default (autotuned on Linux).</summary>
    public int SocketBufferBytes { get; init; }

    /// <summary>
    /// Whether two members that share <see cref="SharedMemoryDirectory"/> (ranks on one host or in one pod) move their data
    /// frames through a mapped ring (<see cref="SharedMemoryChannel"/>) instead of loopback TCP. Each link decides at
    /// formation, and falls back to TCP when either end has it off or the peer's segment is not visible.
    /// </summary>
    public bool SharedMemory { get; init; } = true;

    /// <summary>Where shared-memory segments are created and looked for: a tmpfs both members see (a pod's is its own).</summary>
    public string SharedMemoryDirectory { get; init; } = "/dev/shm";

    internal int BucketElements => Math.Max(1, BucketBytes / sizeof(float));
    internal int SegmentElements => Math.Max(1, SegmentBytes / sizeof(float));
    internal TimeSpan Grace => FailureGrace < IoTimeout ? FailureGrace : IoTimeout;
}
