using Akka.Actor;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// What a node process does when its actor system stops. A node the cluster downed (the split-brain resolver after a
/// partition, or an operator's <c>down</c>) cannot come back as the same actor system: Akka runs its coordinated shutdown
/// and terminates it. The node then starts a fresh host (a new actor system, same address, new incarnation) and joins
/// its seeds again, after a delay that doubles from <see cref="FirstDelay"/> up to <see cref="MaxDelay"/> and starts over
/// once a host has stayed up for <see cref="Stable"/>.
/// <para>
/// Akka.Remote (1.5.74) also shuts the actor system down when an outbound TLS handshake fails, whatever the cause: a
/// peer that closed the connection mid-handshake (restarting, or behind a partition) as much as a bad certificate. The
/// node starts afresh the same way, at most <see cref="MaxTransportFailures"/> times in a row; a failure that persists
/// (a certificate the peers refuse) then ends the process with Akka's exit code for it, so an orchestrator sees a failure.
/// </para>
/// A node that left a cluster with no coordinator in it (<see cref="CoordinatorWatch"/>) rejoins the same way as a downed one.
/// Any other stop (SIGTERM, Ctrl+C, a failed start) ends the process.
/// </summary>
public sealed record RejoinPolicy(TimeSpan FirstDelay, TimeSpan MaxDelay, TimeSpan Stable)
{
    public static readonly RejoinPolicy Default = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5));

    /// <summary>Fresh starts after failed TLS handshakes in a row (within <see cref="Stable"/>) before the process gives up.</summary>
    public const int MaxTransportFailures = 5;

    /// <summary>Akka's exit code for a shutdown after a failed TLS handshake, which the process ends with once it gives up.</summary>
    public const int ExitTlsHandshakeFailed = 79;

    /// <summary>Why a node's host stopped, as far as rejoining is concerned.</summary>
    public enum StopReason { Downed, CoordinatorAbsent, TlsHandshakeFailed, Requested }

    /// <summary>The delay before the next start, or null to end the process.</summary>
    /// <param name="failuresInARow">Stops so far, counting this one, since a host last stayed up for <see cref="Stable"/>.</param>
    public TimeSpan? Decide(StopReason reason, int failuresInARow)
    {
        if (reason == StopReason.Requested) return null;
        if (failuresInARow < 1) throw new ArgumentOutOfRangeException(nameof(failuresInARow), "a stop counts itself");
        if (reason == StopReason.TlsHandshakeFailed && failuresInARow > MaxTransportFailures) return null;
        double seconds = FirstDelay.TotalSeconds * Math.Pow(2, Math.Min(failuresInARow - 1, 30));
        return TimeSpan.FromSeconds(Math.Min(seconds, MaxDelay.TotalSeconds));
    }

    /// <summary>Downings in a row after one more, given how long the host that just stopped was up.</summary>
    public int Count(int failuresInARow, TimeSpan uptime) => uptime >= Stable ? 1 : failuresInARow + 1;

    /// <summary>
    /// The settings a node rejoins with. Akka's first seed forms a new cluster by joining itself when no other seed
    /// answers, so a downed node must not simply start again with its old seeds: on the minority side of a partition it
    /// would form a second cluster. Hence:
    /// <list type="bullet">
    /// <item>a node rejoins through its seeds <em>without its own address</em>, so it can only join an existing cluster;</item>
    /// <item>except the <b>founder</b>, the first seed of the original list: it lists itself first again, but with Akka's
    /// seed-node timeout raised past any run (<see cref="FounderSeedNodeTimeout"/>), so it joins itself only when every
    /// other seed has answered that it is in no cluster (Akka's first-seed process: all <c>InitJoinNack</c>). That is the
    /// whole cluster downed at once (the split-brain resolver downs every node when the network stays unstable, e.g. a
    /// flapping link): without a founder nobody would ever form it again. A seed that does not answer (cut off) keeps it
    /// waiting, so a partition cannot make a second cluster. One founder only: two could each see the other uninitialised.</item>
    /// </list>
    /// Null when no other seed is listed: such a node cannot rejoin safely, and exits instead. The first seed is the same
    /// before and after (the founder keeps itself first, any other node drops only itself), so a node can rejoin again
    /// and again from its last settings.
    /// </summary>
    public static NodeSettings? RejoinSettings(NodeSettings settings)
    {
        if (settings.Discovery == NodeSettings.KubernetesDiscovery) return settings;   // bootstrap joins an existing cluster first
        var others = settings.Seeds.Where(s => s != settings.Address).ToList();
        if (others.Count == 0) return null;
        return settings.Seeds[0] == settings.Address
            ? settings with { Seeds = [settings.Address, .. others], SeedNodeTimeout = FounderSeedNodeTimeout }
            : settings with { Seeds = others };
    }

    /// <summary>A rejoining founder's seed-node timeout: longer than any run, so it never forms a cluster by timing out.</summary>
    public static readonly TimeSpan FounderSeedNodeTimeout = TimeSpan.FromDays(365);

    /// <summary>
    /// Reads why a stopped node's actor system shut down: <see cref="StopReason.Downed"/> when the cluster downed or
    /// removed it (<see cref="CoordinatedShutdown.ClusterDowningReason"/>), <see cref="StopReason.CoordinatorAbsent"/> when
    /// <see cref="CoordinatorWatch"/> left a cluster without a coordinator, <see cref="StopReason.TlsHandshakeFailed"/>
    /// when Akka.Remote stopped it after a failed TLS handshake, else <see cref="StopReason.Requested"/>.
    /// </summary>
    public static StopReason ReasonOf(ActorSystem system) => CoordinatedShutdown.Get(system).ShutdownReason switch
    {
        CoordinatedShutdown.ClusterDowningReason => StopReason.Downed,
        CoordinatorWatch.CoordinatorAbsent => StopReason.CoordinatorAbsent,
        { } other when other.GetType().FullName == TlsHandshakeFailureReasonType => StopReason.TlsHandshakeFailed,
        _ => StopReason.Requested,
    };

    /// <summary>Akka.Remote's reason for a shutdown after a failed TLS handshake: an internal type, so known by name (a test checks it exists).</summary>
    public const string TlsHandshakeFailureReasonType = "Akka.Remote.Transport.DotNetty.TlsHandshakeFailureReason";
}
