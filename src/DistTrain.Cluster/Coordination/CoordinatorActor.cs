using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>How long the coordinator waits for progress before it blames the ranks it is waiting on.</summary>
public sealed record CoordinatorTimeouts(TimeSpan Admission, TimeSpan Prepare, TimeSpan Step, TimeSpan Checkpoint)
{
    public static readonly CoordinatorTimeouts Default = new(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(3), TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(2));
}

/// <summary>
/// The cluster singleton. Keeps the worker registry, runs data-parallel stages through <see cref="DataParallelRun"/>
/// (which holds every decision), and turns cluster events, deaths and deadlines into run events.
/// </summary>
public sealed class CoordinatorActor : ReceiveActor, IWithTimers
{
    private readonly IReducerHost? _reducer;
    private readonly CoordinatorTimeouts _timeouts;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, (WorkerSlot Slot, IActorRef Ref)> _workers = new();
    private readonly Queue<(RunStage Request, IActorRef ReplyTo)> _pending = new();
    private ActiveRun? _active;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IReducerHost? reducer, CoordinatorTimeouts? timeouts = null) =>
        Akka.Actor.Props.Create(() => new CoordinatorActor(reducer, timeouts ?? CoordinatorTimeouts.Default));

    public CoordinatorActor(IReducerHost? reducer, CoordinatorTimeouts timeouts)
    {
        (_reducer, _timeouts) = (reducer, timeouts);
        Receive<RegisterWorker>(Register);
        Receive<Terminated>(t => LoseWhere(w => w.Ref.Equals(t.ActorRef), "worker actor terminated"));
        Receive<ClusterEvent.UnreachableMember>(u => LoseWhere(w => w.Ref.Path.Address.Equals(u.Member.Address), "node unreachable"));
        Receive<ClusterEvent.MemberRemoved>(r => LoseWhere(w => w.Ref.Path.Address.Equals(r.Member.Address), "node removed"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<RunStage>(r => { _pending.Enqueue((r, Sender)); StartNext(); });
        Receive<GetWorkers>(_ => Sender.Tell(Snapshot()));
        Receive<GroupPrepared>(m => Apply(run => run.OnPrepared(m), m.JobId, m.Stage, progress: true));
        Receive<StepCompleted>(m =>
        {
            if (_active?.Run.Generation == m.Generation) Context.System.EventStream.Publish(m);
            Apply(run => run.OnStepCompleted(m), m.JobId, m.Stage, progress: true);
        });
        Receive<CheckpointSaved>(m => Apply(run => run.OnCheckpointSaved(m), m.JobId, m.Stage, progress: true));
        Receive<SessionFailed>(m => Apply(run => run.OnSessionFailed(m), m.JobId, m.Stage));
        Receive<DeadlineTick>(_ => CheckDeadline());
    }

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.InitialStateAsEvents,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("deadline", DeadlineTick.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void Register(RegisterWorker m)
    {
        bool known = _workers.TryGetValue(m.WorkerId, out var existing) && existing.Ref.Equals(Sender);
        _workers[m.WorkerId] = (new WorkerSlot(m.WorkerId, m.Node, m.Device, m.DataPlane), Sender);
        Sender.Tell(new WorkerRegistered(m.WorkerId));
        if (!known)
        {
            Context.Watch(Sender);
            _log.Info("worker {0} registered ({1}, {2})", m.WorkerId, m.Node, m.Device);
        }
        // Re-registrations offer the worker again: one blamed for a failure while still alive rejoins at the next
        // boundary. The run ignores workers it already has.
        if (_active is not null) Apply(run => run.OnWorkerAvailable(_workers[m.WorkerId].Slot), _active.Request.JobId, _active.Request.Stage);
    }

    private void LoseWhere(Func<(WorkerSlot Slot, IActorRef Ref), bool> match, string reason)
    {
        foreach (var (id, w) in _workers.Where(kv => match(kv.Value)).ToList())
        {
            _workers.Remove(id);
            _log.Warning("worker {0} lost: {1}", id, reason);
            Context.System.EventStream.Publish(new WorkerLost(id, reason));
            if (_active is not null) Apply(run => run.OnWorkerLost(id, reason), _active.Request.JobId, _active.Request.Stage);
        }
    }

    private void StartNext()
    {
        if (_active is not null || _pending.Count == 0) return;
        var (request, replyTo) = _pending.Dequeue();
        var transport = new RunTransport(request.Aggregation, request.Wire,
            request.Aggregation == GradientAggregation.Coordinator ? _reducer?.Endpoint : null);
        DataParallelRun run;
        try { run = new DataParallelRun(request.JobId, request.Stage, request.SpecYaml, request.Limits, transport, request.Quick); }
        catch (ArgumentException e)
        {
            replyTo.Tell(new StageFinished(request.JobId, request.Stage, false, e.Message, null, 0));
            StartNext();
            return;
        }
        _active = new ActiveRun(request, replyTo, run);
        _log.Info("stage {0}/{1}: waiting for {2}..{3} workers", request.JobId, request.Stage, request.Limits.MinWorkers, request.Limits.MaxWorkers);
        Apply(r => r.OnWorkersAvailable(_workers.Values.Select(w => w.Slot).ToList()), request.JobId, request.Stage);
    }

    /// <param name="progress">A worker reported progress; silence from workers, not from registrations, is what deadlines catch.</param>
    private void Apply(Func<DataParallelRun, IReadOnlyList<RunCommand>> decide, string jobId, string stage, bool progress = false)
    {
        var active = _active;
        if (active is null || active.Request.JobId != jobId || active.Request.Stage != stage) return;
        int generationBefore = active.Run.Generation;
        var commands = decide(active.Run);
        if (active.Run.Generation != generationBefore) OnNewGeneration(active, generationBefore);
        if (progress || active.Run.Generation != generationBefore) active.LastProgress = DateTime.UtcNow;
        foreach (var command in commands)
        {
            switch (command)
            {
                case SendTo send when _workers.TryGetValue(send.WorkerId, out var w):
                    w.Ref.Tell(send.Message, Self);
                    break;
                case Finished f:
                    Finish(active, f);
                    break;
            }
        }
    }

    private void OnNewGeneration(ActiveRun active, int previous)
    {
        Context.System.EventStream.Publish(new GenerationStarted(active.Request.JobId, active.Request.Stage, active.Run.Generation,
            active.Run.Members.Select(m => m.WorkerId).ToList(), active.Run.RestartsUsed));
        if (_reducer is null || active.Request.Aggregation != GradientAggregation.Coordinator) return;
        if (previous > 0) _reducer.EndGeneration(active.Request.JobId, previous);
        _reducer.BeginGeneration(active.Request.JobId, active.Run.Generation, active.Run.Members.Count, active.Request.Wire);
    }

    private void Finish(ActiveRun active, Finished f)
    {
        if (_reducer is not null && active.Request.Aggregation == GradientAggregation.Coordinator)
            _reducer.EndGeneration(active.Request.JobId, active.Run.Generation);
        _log.Info("stage {0}/{1} {2}: {3}", active.Request.JobId, active.Request.Stage, f.Succeeded ? "completed" : "failed", f.Summary);
        var finished = new StageFinished(active.Request.JobId, active.Request.Stage, f.Succeeded, f.Summary, active.Run.LastCheckpoint, active.Run.RestartsUsed);
        active.ReplyTo.Tell(finished);
        Context.System.EventStream.Publish(finished);
        _active = null;
        StartNext();
    }

    private void CheckDeadline()
    {
        var active = _active;
        if (active is null) return;
        var limit = active.Run.Phase switch
        {
            RunPhase.WaitingForWorkers => _timeouts.Admission,
            RunPhase.Preparing => _timeouts.Prepare,
            RunPhase.Running => _timeouts.Step,
            RunPhase.Checkpointing => _timeouts.Checkpoint,
            _ => (TimeSpan?)null,
        };
        if (limit is null || DateTime.UtcNow - active.LastProgress < limit) return;
        if (active.Run.Phase == RunPhase.WaitingForWorkers)
        {
            Apply(run => run.Abandon($"fewer than {active.Request.Limits.MinWorkers} workers were free for {limit.Value.TotalSeconds:F0} s"),
                active.Request.JobId, active.Request.Stage);
            return;
        }
        var suspect = active.Run.Awaited().FirstOrDefault();
        if (suspect is null) return;
        string reason = $"no progress for {limit.Value.TotalSeconds:F0} s in phase {active.Run.Phase}";
        Apply(run => run.OnWorkerLost(suspect.WorkerId, reason), active.Request.JobId, active.Request.Stage);
    }

    private WorkersSnapshot Snapshot()
    {
        var members = _active?.Run.Members.Select((m, rank) => (m.WorkerId, rank)).ToDictionary(x => x.WorkerId, x => x.rank) ?? new();
        return new WorkersSnapshot(_workers.Values.OrderBy(w => w.Slot.WorkerId, StringComparer.Ordinal).Select(w =>
        {
            bool busy = members.TryGetValue(w.Slot.WorkerId, out int rank);
            return new WorkerStatus(w.Slot.WorkerId, w.Slot.Node, w.Slot.Device, busy ? _active!.Request.JobId : null,
                busy ? _active!.Request.Stage : null, busy ? rank : null);
        }).ToList());
    }

    private sealed class ActiveRun(RunStage request, IActorRef replyTo, DataParallelRun run)
    {
        public RunStage Request { get; } = request;
        public IActorRef ReplyTo { get; } = replyTo;
        public DataParallelRun Run { get; } = run;
        public DateTime LastProgress { get; set; } = DateTime.UtcNow;
    }

    private sealed class DeadlineTick { public static readonly DeadlineTick Instance = new(); }
}
