using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistTrain.Contracts.Protocols;
using DistTrain.Execution;

namespace DistTrain.Cluster.Worker;

/// <summary>
/// Owns one device. Registers with the coordinator, joins process groups, and runs steps on the device
/// thread. Handlers only decide and forward: tensor work happens in <see cref="ITrainingSession"/>, gradient
/// bytes in the data plane, and results come back as messages.
/// </summary>
public sealed class WorkerActor : ReceiveActor, IWithTimers
{
    private readonly string _workerId;
    private readonly string _node;
    private readonly IActorRef _coordinator;
    private readonly IDataPlane _dataPlane;
    private readonly ITrainingSessionFactory _sessions;
    private readonly IShardRunner _shards;
    private readonly string _runRoot;
    private readonly DeviceThread _device;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ActiveGroup? _group;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string workerId, string node, string device, IActorRef coordinatorProxy, IDataPlane dataPlane,
        ITrainingSessionFactory sessions, IShardRunner shards, string runRoot) =>
        Akka.Actor.Props.Create(() => new WorkerActor(workerId, node, device, coordinatorProxy, dataPlane, sessions, shards, runRoot));

    public WorkerActor(string workerId, string node, string device, IActorRef coordinatorProxy, IDataPlane dataPlane,
        ITrainingSessionFactory sessions, IShardRunner shards, string runRoot)
    {
        (_workerId, _node, _coordinator, _dataPlane, _sessions, _shards, _runRoot) = (workerId, node, coordinatorProxy, dataPlane, sessions, shards, runRoot);
        _device = new DeviceThread(device);

        // Registration repeats: a coordinator that failed over starts with no memory of workers.
        Receive<RegisterTick>(_ => _coordinator.Tell(new RegisterWorker(_workerId, _node, _device.Device, _dataPlane.Endpoint)));
        Receive<WorkerRegistered>(_ => { });
        Receive<Idle>(_ => { });
        Receive<PrepareGroup>(Prepare);
        Receive<Prepared>(OnPrepared);
        Receive<RunSteps>(Run);
        Receive<SaveCheckpoint>(Save);
        Receive<AbortGroup>(m => Abort(m.Generation, m.Reason));
        Receive<RunShard>(Label);
        Receive<DeviceFailed>(OnDeviceFailed);
    }

    protected override void PreStart() => Timers.StartPeriodicTimer("register", RegisterTick.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(2));

    protected override void PostStop()
    {
        _group?.Reducer.Abort();
        _device.Run(() => { _group?.Session?.Dispose(); _group?.Reducer.Dispose(); return 0; });
        _device.Dispose();
    }

    private void Prepare(PrepareGroup m)
    {
        if (_group is not null) Abort(_group.Generation, "superseded by a new group");
        var group = new ActiveGroup(m, Sender, _dataPlane.CreateReducer(m));
        _group = group;
        var request = new SessionRequest(m.JobId, m.Stage, m.SpecYaml, m.Quick, m.Generation, m.Rank, m.WorldSize, _device.Device, _runRoot, m.ResumeFrom);
        _device.Run(() =>
        {
            group.Reducer.Connect();
            group.Session = _sessions.Open(request, group.Reducer);
            return new Prepared(m.Generation, group.Session.NextStep);
        }).PipeTo(Self, failure: e => new DeviceFailed(m.Generation, -1, e));
    }

    private void OnPrepared(Prepared p)
    {
        if (_group?.Generation != p.Generation) return;
        _group.Coordinator.Tell(new GroupPrepared(_group.Spec.JobId, _group.Spec.Stage, p.Generation, _group.Spec.Rank, p.NextStep));
    }

    private void Run(RunSteps m)
    {
        var group = _group;
        if (group is null || group.Generation != m.Generation || group.Session is null) return;
        var session = group.Session;
        var events = Context.System.EventStream;
        // Steps run back to back on the device thread; the all-reduce inside each step keeps ranks in lock step.
        // Reports leave in batches (StepReportBatch); what is pending when a step fails leaves before the failure does.
        _device.Run(() =>
        {
            var batch = new StepReportBatch();
            void Send(StepsCompleted ready)
            {
                group.Coordinator.Tell(ready);
                foreach (var report in ready.Steps) events.Publish(new WorkerReport(_workerId, report));
            }
            try
            {
                for (int step = m.FromStep; step < m.ToStep; step++)
                {
                    long bytesBefore = group.Reducer.BytesReduced;
                    var clock = Stopwatch.StartNew();
                    var r = session.RunStep(step);
                    double seconds = clock.Elapsed.TotalSeconds;
                    bool last = step == m.ToStep - 1;
                    string? checksum = m.ChecksumAtEnd && last ? session.ParameterChecksum() : null;
                    var report = new StepCompleted(m.JobId, m.Stage, m.Generation, group.Spec.Rank, step, r.Loss, r.GradNorm, r.LearningRate,
                        r.Targets, seconds, r.ReduceSeconds, r.DataSeconds, checksum, group.Reducer.BytesReduced - bytesBefore, r.CommSeconds,
                        DateTime.UtcNow.Ticks);
                    if (batch.Add(report, windowEnd: last) is { } ready) Send(ready);
                }
            }
            finally
            {
                if (batch.Flush() is { } rest) Send(rest);
            }
            return 0;
        }).PipeTo(Self, success: _ => Idle.Instance, failure: e => new DeviceFailed(m.Generation, m.FromStep, e));
    }

    private void Save(SaveCheckpoint m)
    {
        var group = _group;
        if (group is null || group.Generation != m.Generation || group.Session is null) return;
        var session = group.Session;
        var events = Context.System.EventStream;
        _device.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            string path = session.SaveCheckpoint();
            var report = new CheckpointSaved(m.JobId, m.Stage, m.Generation, group.Spec.Rank, m.Step, path, clock.Elapsed.TotalSeconds);
            group.Coordinator.Tell(report);
            events.Publish(new WorkerReport(_workerId, report));
            return 0;
        }).PipeTo(Self, success: _ => Idle.Instance, failure: e => new DeviceFailed(m.Generation, m.Step, e));
    }

    /// <summary>One shard of a distributed label stage; the coordinator hands shards only to workers in no group.</summary>
    private void Label(RunShard m)
    {
        var coordinator = Sender;
        if (_group is not null)
        {
            coordinator.Tell(new ShardFailed(m.JobId, m.Stage, m.Shard, $"worker {_workerId} is in a training group"));
            return;
        }
        var request = new ShardRequest(m.JobId, m.Stage, m.SpecYaml, m.Quick, m.Shard, m.ShardCount, _runRoot);
        _device.Run(() => _shards.Run(request, _device.Device)).PipeTo(coordinator, Self,
            success: r => new ShardDone(m.JobId, m.Stage, m.Shard, r.Examples, r.Seconds, r.Reused),
            failure: e => new ShardFailed(m.JobId, m.Stage, m.Shard, (e is AggregateException { InnerException: { } i } ? i : e).Message));
    }

    private void Abort(int generation, string reason)
    {
        var group = _group;
        if (group is null || group.Generation != generation) return;
        _log.Info("leaving group generation {0}: {1}", generation, reason);
        _group = null;
        group.Reducer.Abort();   // unblocks a collective in flight on the device thread, from this thread
        _device.Run(() => { group.Session?.Dispose(); group.Reducer.Dispose(); return 0; });
    }

    private void OnDeviceFailed(DeviceFailed f)
    {
        var group = _group;
        if (group is null || group.Generation != f.Generation) return;   // failures of an aborted group are expected
        var error = f.Error is AggregateException { InnerException: { } inner } ? inner : f.Error;
        _log.Warning("rank {0} failed in generation {1}: {2}", group.Spec.Rank, f.Generation, error.Message);
        var report = new SessionFailed(group.Spec.JobId, group.Spec.Stage, f.Generation, group.Spec.Rank, f.Step,
            error.Message, _dataPlane.SuspectRank(error));
        group.Coordinator.Tell(report);
        Context.System.EventStream.Publish(new WorkerReport(_workerId, report, error));
    }

    private sealed class ActiveGroup(PrepareGroup spec, IActorRef coordinator, IDataPlaneReducer reducer)
    {
        public PrepareGroup Spec { get; } = spec;
        public int Generation => Spec.Generation;
        public IActorRef Coordinator { get; } = coordinator;
        public IDataPlaneReducer Reducer { get; } = reducer;
        public ITrainingSession? Session { get; set; }
    }

    private sealed record Prepared(int Generation, int NextStep);
    private sealed record DeviceFailed(int Generation, int Step, Exception Error);
    private sealed class RegisterTick { public static readonly RegisterTick Instance = new(); }
    private sealed class Idle { public static readonly Idle Instance = new(); }
}
