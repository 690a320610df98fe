using System.Net;

namespace DistTrain.Collective;

/// <summary>
/// One rank's membership in a data-plane group of one generation: its connected links and the
/// all-reduce the job chose. Dispose it (or let a failure end it) and form the next generation anew.
/// </summary>
/// <example>
/// <code>
/// using var listener = DataPlaneListener.Start(IPAddress.Parse(podIp));   // report listener.Port to the coordinator
/// using var group = await ProcessGroup.ConnectAsync(spec, listener, options, ct);
/// AllReduceStats stats = group.AllReduce(flatGradients);                   // on the device thread
/// </code>
/// </example>
public sealed class ProcessGroup : IAllReduce, IDisposable
{
    private readonly GroupLinks _links;
    private readonly IAllReduce _algorithm;

    private ProcessGroup(GroupSpec spec, GroupLinks links)
    {
        Spec = spec;
        _links = links;
        _algorithm = spec.Algorithm == AllReduceAlgorithm.Ring
            ? new RingAllReduce(links, spec.Rank, spec.WorldSize)
            : new CoordinatorAllReduce(links, spec.Rank);
    }

    /// <summary>
    /// Connects this rank to the others (ring: a full mesh, higher ranks dial lower ones) or to the
    /// reducer (coordinator mode), with handshakes that reject any other job or generation and anyone who cannot
    /// prove the generation's secret.
    /// Throws <see cref="PeerFailedException"/> (Reason Unreachable) naming a rank that did not show up
    /// within <see cref="DataPlaneOptions.ConnectTimeout"/>, or <see cref="HandshakeRejectedException"/>.
    /// </summary>
    public static async Task<ProcessGroup> ConnectAsync(GroupSpec spec, DataPlaneListener listener,
        DataPlaneOptions? options = null, CancellationToken ct = default)
    {
        spec.Validate();
        options ??= new DataPlaneOptions();
        List<(int, EndPoint)> connectTo;
        List<int> acceptFrom;
        if (spec.Algorithm == AllReduceAlgorithm.Ring)
        {
            connectTo = Enumerable.Range(0, spec.Rank).Select(r => (r, spec.Peers[r])).ToList();
            acceptFrom = Enumerable.Range(spec.Rank + 1, spec.WorldSize - spec.Rank - 1).ToList();
        }
        else
        {
            connectTo = [(GroupSpec.ReducerRank, spec.Reducer!)];
            acceptFrom = [];
            // The reducer sees every worker, so it is the one to judge who went silent: workers give it
            // a head start before timing out on it themselves, or they would all blame the reducer.
            options = options with { IoTimeout = options.IoTimeout + 2 * options.Grace };
        }
        // Ring data only flows to the two neighbours; the other links of the mesh carry control notices and stay on TCP.
        var (left, right) = RingPlan.Neighbours(spec.Rank, spec.WorldSize);
        Func<int, bool>? sharedMemoryWith = spec.Algorithm == AllReduceAlgorithm.Ring ? peer => peer == left || peer == right : null;
        var links = await GroupFormation.FormAsync(spec.JobId, spec.Generation, spec.Rank, spec.WorldSize, spec.Secret,
            connectTo, acceptFrom, listener, options, ct, sharedMemoryWith).ConfigureAwait(false);
        return new ProcessGroup(spec, links);
    }

    public GroupSpec Spec { get; }
    public int Rank => Spec.Rank;
    public int WorldSize => Spec.WorldSize;
    public long Generation => Spec.Generation;

    /// <summary>Live totals over the group's life (every link, both directions); for metrics.</summary>
    public long BytesSent => _links.BytesSent;
    public long BytesReceived => _links.BytesReceived;

    /// <summary>How data frames travel to each peer rank: "shm" (shared memory on this host) or "tcp".</summary>
    public IReadOnlyDictionary<int, string> Transports => _links.Links.ToDictionary(l => l.Key, l => l.Value.Transport);

    /// <summary>Null while healthy; the <see cref="PeerFailedException"/> or <see cref="GroupClosedException"/> that ended the group.</summary>
    public Exception? Failure => _links.Failure;

    /// <summary>In-place SUM over every rank's <paramref name="buffer"/>; see <see cref="IAllReduce"/>.</summary>
    public AllReduceStats AllReduce(Span<float> buffer) => _algorithm.AllReduce(buffer);

    /// <summary>In-place SUM with a per-call wire format; every rank must pass the same one.</summary>
    public AllReduceStats AllReduce(Span<float> buffer, Wire.WireFormat wire) => _algorithm.AllReduce(buffer, wire);

    /// <summary>Closes every connection; anything blocked in this group throws <see cref="GroupClosedException"/> at once.</summary>
    public void Dispose()
    {
        _links.Dispose();
        (_algorithm as IDisposable)?.Dispose();
    }

    /// <summary>Drops every socket with no goodbye, as a killed process would (failure tests).</summary>
    internal void Crash() => _links.Crash();
}
