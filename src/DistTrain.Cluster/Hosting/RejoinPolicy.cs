using Akka.Actor;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// What a node process does when its actor system stops. A node the cluster downed (the split-brain resolver after a
/// partition, or an operator's <c>down</c>) cannot come back as the same actor system: Akka runs its coordinated shutdown
/// and terminates it. The node then starts a fresh host (a new actor system, same address, new incarnation) and joins
/// its seeds again, after a delay that doubles from <see cref="FirstDelay"/> up to <see cref="MaxDelay"/> and starts over
/// once a host has stayed up for <see cref="Stable"/>. Any other stop (SIGTERM, Ctrl+C, a failed start) ends the process.
/// </summary>
public sealed record RejoinPolicy(TimeSpan FirstDelay, TimeSpan MaxDelay, TimeSpan Stable)
{
    public static readonly RejoinPolicy Default = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5));

    /// <summary>Why a node's host stopped, as far as rejoining is concerned.</summary>
    public enum StopReason { Downed, Requested }

    /// <summary>The delay before the next start, or null to end the process.</summary>
    /// <param name="failuresInARow">Downings so far, counting this one, since a host last stayed up for <see cref="Stable"/>.</param>
    public TimeSpan? Decide(StopReason reason, int failuresInARow)
    {
        if (reason != StopReason.Downed) return null;
        if (failuresInARow < 1) throw new ArgumentOutOfRangeException(nameof(failuresInARow), "a downing counts itself");
        double seconds = FirstDelay.TotalSeconds * Math.Pow(2, Math.Min(failuresInARow - 1, 30));
        return TimeSpan.FromSeconds(Math.Min(seconds, MaxDelay.TotalSeconds));
    }

    /// <summary>Downings in a row after one more, given how long the host that just stopped was up.</summary>
    public int Count(int failuresInARow, TimeSpan uptime) => uptime >= Stable ? 1 : failuresInARow + 1;

    /// <summary>
    /// The settings a node rejoins with: its seeds without itself, so that the fresh actor system can only join the
    /// cluster that downed it and never forms a second one on its own (Akka's first seed joins itself when no other
    /// seed answers). Null when no other seed is listed: such a node cannot rejoin safely, and exits instead.
    /// </summary>
    public static NodeSettings? RejoinSettings(NodeSettings settings)
    {
        if (settings.Discovery == NodeSettings.KubernetesDiscovery) return settings;   // bootstrap joins an existing cluster first
        var others = settings.Seeds.Where(s => s != settings.Address).ToList();
        return others.Count == 0 ? null : settings with { Seeds = others };
    }

    /// <summary>
    /// Reads why a stopped node's actor system shut down: <see cref="StopReason.Downed"/> when the cluster downed or
    /// removed it (<see cref="CoordinatedShutdown.ClusterDowningReason"/>), else <see cref="StopReason.Requested"/>.
    /// </summary>
    public static StopReason ReasonOf(ActorSystem system) =>
        CoordinatedShutdown.Get(system).ShutdownReason is CoordinatedShutdown.ClusterDowningReason ? StopReason.Downed : StopReason.Requested;
}
