using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// Runs on a node without the coordinator role. A worker can end up Up in a cluster that has no coordinator-role member
/// at all: after a partition heals, the others may have been downed, restarted and formed a new cluster around the
/// founder while this node, never downed, stayed the only member of the old one (seen in the partition tests, 2026-12-05:
/// the old members' incarnations quarantined and removed, so the split-brain resolver had nothing left to decide). Such a
/// node receives no work and nobody ever contacts it again. Once it has been Up for <see cref="After"/> with no
/// coordinator-role member in its membership (reachable or not: an unreachable one is the resolver's to settle), it downs
/// itself, and <see cref="RejoinPolicy"/> starts a fresh actor system that joins through the seeds, i.e. the real cluster.
/// </summary>
public sealed class OrphanWatch : ReceiveActor, IWithTimers
{
    /// <summary>Long enough for a coordinator to restart and rejoin, or for a bootstrap that formed without one to be joined.</summary>
    public static readonly TimeSpan DefaultAfter = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TimeSpan _after;
    private DateTime? _orphanSince;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(TimeSpan after) => Akka.Actor.Props.Create(() => new OrphanWatch(after));

    public OrphanWatch(TimeSpan after)
    {
        _after = after;
        Receive<Tick>(_ => Check());
    }

    protected override void PreStart() => Timers.StartPeriodicTimer("check", Tick.Instance, Interval);

    private void Check()
    {
        var state = _cluster.State;
        bool selfUp = state.Members.Any(m => m.Address == _cluster.SelfAddress && m.Status == MemberStatus.Up);
        if (!IsOrphan(selfUp, state.Members.Select(m => ((IReadOnlyCollection<string>)m.Roles, m.Status))))
        {
            _orphanSince = null;
            return;
        }
        _orphanSince ??= DateTime.UtcNow;
        if (DateTime.UtcNow - _orphanSince < _after) return;
        _log.Warning("this node has been Up for {0:F0} s in a cluster without any coordinator-role member ({1}); downing itself to rejoin through its seeds",
            (DateTime.UtcNow - _orphanSince.Value).TotalSeconds, string.Join(", ", state.Members.Select(m => $"{m.Address} {m.Status}")));
        _orphanSince = null;
        _cluster.Down(_cluster.SelfAddress);
    }

    /// <summary>
    /// Whether a node that is Up sees no member with the coordinator role that is (or is becoming) part of the cluster:
    /// members leaving it for good (exiting, down, removed) do not count.
    /// </summary>
    public static bool IsOrphan(bool selfUp, IEnumerable<(IReadOnlyCollection<string> Roles, MemberStatus Status)> members) =>
        selfUp && !members.Any(m => m.Roles.Contains(Roles.Coordinator)
            && m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up or MemberStatus.Leaving);

    private sealed class Tick { public static readonly Tick Instance = new(); }
}
