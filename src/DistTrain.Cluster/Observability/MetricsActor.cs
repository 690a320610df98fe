using Akka.Actor;
using Akka.Cluster;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Worker;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// One per node. Subscribes to the node's event stream (its workers' reports; on a coordinator node also the
/// coordinator's step, group and stage events and the scheduler's job events) and to cluster membership, and hands
/// every event to <see cref="MetricsRecorder"/>. No other actor calls a metric.
/// </summary>
public sealed class MetricsActor : ReceiveActor
{
    private readonly MetricsRecorder _recorder;
    private readonly bool _coordinator;
    private readonly bool _worker;

    public static Props Props(MetricsRecorder recorder, bool coordinator, bool worker) =>
        Akka.Actor.Props.Create(() => new MetricsActor(recorder, coordinator, worker));

    public MetricsActor(MetricsRecorder recorder, bool coordinator, bool worker)
    {
        (_recorder, _coordinator, _worker) = (recorder, coordinator, worker);
        Receive<WorkerReport>(_recorder.Record);
        Receive<StepCompleted>(_recorder.Record);
        Receive<GenerationStarted>(_recorder.Record);
        Receive<StageFinished>(_recorder.Record);
        Receive<WorkerLost>(_recorder.Record);
        Receive<JobActivity>(_recorder.Record);
        Receive<JobQueueChanged>(_recorder.Record);
        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            _recorder.ResetMembership();
            foreach (var m in s.Members) OnMember(m);
            foreach (var m in s.Unreachable) _recorder.RecordReachability(m.Address.ToString(), reachable: false);
        });
        Receive<ClusterEvent.IMemberEvent>(e => OnMember(e.Member));
        Receive<ClusterEvent.UnreachableMember>(e => _recorder.RecordReachability(e.Member.Address.ToString(), reachable: false));
        Receive<ClusterEvent.ReachableMember>(e => _recorder.RecordReachability(e.Member.Address.ToString(), reachable: true));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
    }

    private void OnMember(Member m) => _recorder.RecordMember(m.Address.ToString(), m.Roles,
        m.Status == MemberStatus.Removed ? null : ClusterMembership.StatusName(m.Status));

    protected override void PreStart()
    {
        var events = Context.System.EventStream;
        if (_worker) events.Subscribe(Self, typeof(WorkerReport));
        if (!_coordinator) return;
        foreach (var t in new[] { typeof(StepCompleted), typeof(GenerationStarted), typeof(StageFinished), typeof(WorkerLost), typeof(JobActivity), typeof(JobQueueChanged) })
            events.Subscribe(Self, t);
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        if (_coordinator) Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }
}
