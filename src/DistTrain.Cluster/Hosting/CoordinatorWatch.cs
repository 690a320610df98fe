using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// On a node without the coordinator role: leaves a cluster that has had no coordinator-role member for
/// <see cref="NodeSettings.RejoinWithoutCoordinator"/>, so that the node rejoins through its seeds
/// (<see cref="RejoinPolicy"/>, reason <see cref="CoordinatorAbsent"/>).
/// <para>
/// Why: the split-brain resolver can leave a remnant of workers Up in a cluster of their own while the coordinator's node
/// is downed, restarts and forms or joins the cluster again through its seeds. When that remnant holds no seed, nobody
/// ever contacts it: its workers stay Up, idle and unregistered for good (seen 2026-12-05, a flapping link in a
/// four-node cluster left one worker alone). A cluster without a coordinator can run nothing, so leaving it costs
/// nothing; a node whose coordinator is merely restarting rejoins it when it is back.
/// </para>
/// </summary>
public sealed class CoordinatorWatch : ReceiveActor, IWithTimers
{
    /// <summary>The coordinated-shutdown reason of a node that left a cluster without a coordinator.</summary>
    public sealed class CoordinatorAbsent : CoordinatedShutdown.Reason
    {
        public static readonly CoordinatorAbsent Instance = new();
        private CoordinatorAbsent() { }
        /// <summary>Akka's exit code for a downed node; used only if Akka ended the process itself, which it does not (exit-clr is off by default).</summary>
        public override int ExitCode => 3;
        public override string ToString() => "no coordinator-role member in the cluster";
    }

    private readonly TimeSpan _after;
    private readonly Akka.Cluster.Cluster _cluster;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<UniqueAddress> _coordinators = new();
    private bool _selfUp;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(TimeSpan after) => Akka.Actor.Props.Create(() => new CoordinatorWatch(after));

    public CoordinatorWatch(TimeSpan after)
    {
        if (after <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(after), "a watch needs a positive bound");
        _after = after;
        _cluster = Akka.Cluster.Cluster.Get(Context.System);
        Receive<ClusterEvent.IMemberEvent>(e => { OnMember(e.Member); Check(); });
        // Check cancels the timer whenever a coordinator appears or this node stops being up, and a cancelled timer's
        // message is never delivered: when Absent arrives, the node has been orphaned for the whole bound.
        Receive<Absent>(_ =>
        {
            _log.Warning("this cluster has had no coordinator-role member for {0:F0} s: it is a remnant the coordinator's node " +
                         "cannot find (a partition's aftermath); leaving it to rejoin through the seeds", _after.TotalSeconds);
            CoordinatedShutdown.Get(Context.System).Run(CoordinatorAbsent.Instance);
        });
    }

    protected override void PreStart() => _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void OnMember(Member m)
    {
        if (m.UniqueAddress.Equals(_cluster.SelfUniqueAddress))
            _selfUp = m.Status is MemberStatus.Up or MemberStatus.WeaklyUp;
        if (!m.HasRole(Roles.Coordinator)) return;
        if (m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up or MemberStatus.Leaving) _coordinators.Add(m.UniqueAddress);
        else _coordinators.Remove(m.UniqueAddress);   // exiting, down or removed: gone for good under this incarnation
    }

    /// <summary>Arms the one timer while this node is up in a cluster without a coordinator; disarms it otherwise.</summary>
    private void Check()
    {
        bool orphaned = _selfUp && _coordinators.Count == 0;
        if (!orphaned) Timers.Cancel(nameof(Absent));
        else if (!Timers.IsTimerActive(nameof(Absent))) Timers.StartSingleTimer(nameof(Absent), Absent.Instance, _after);
    }

    private sealed class Absent { public static readonly Absent Instance = new(); }
}
