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
/// The cluster singleton. Keeps the worker registry and runs data-parallel stages through <see cref="DataParallelRun"/>
/// (which holds every decision), several at once on disjoint sets of workers, and turns cluster events, deaths and
/// deadlines into run events. Stages waiting for workers start in priority order as workers become free.
/// </summary>
public sealed class CoordinatorActor : ReceiveActor, IWithTimers
{
    private readonly IReducerHost? _reducer;
    private readonly CoordinatorTimeouts _timeouts;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, (WorkerSlot Slot, IActorRef Ref)> _workers = new();
    private readonly List<ActiveRun> _runs = new();   // in admission order: priority, then arrival
    private long _arrivals;

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
        Receive<RunStage>(Start);
        Receive<StopStage>(m => Apply(m.JobId, m.Stage, run => run.RequestStop(m.Reason)));
        Receive<GetWorkers>(_ => Sender.Tell(Snapshot()));
        Receive<GroupPrepared>(m => Apply(m.JobId, m.Stage, run => run.OnPrepared(m), progress: true));
        Receive<StepCompleted>(m =>
        {
            if (Find(m.JobId, m.Stage) is { } active && active.Run.Generation == m.Generation)
            {
                Context.System.EventStream.Publish(m);
                active.ReplyTo.Tell(m);
            }
            Apply(m.JobId, m.Stage, run => run.OnStepCompleted(m), progress: true);
        });
        Receive<CheckpointSaved>(m =>
        {
            var active = Find(m.JobId, m.Stage);
            string? before = active?.Run.LastCheckpoint;
            Apply(m.JobId, m.Stage, run => run.OnCheckpointSaved(m), progress: true);
            if (active is not null && active.Run.LastCheckpoint != before) active.ReplyTo.Tell(m);
        });
        Receive<SessionFailed>(m => Apply(m.JobId, m.Stage, run => run.OnSessionFailed(m)));
        Receive<DeadlineTick>(_ => CheckDeadlines());
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
        // boundary. Runs ignore workers they already have.
        OfferFreeWorkers();
    }

    private void LoseWhere(Func<(WorkerSlot Slot, IActorRef Ref), bool> match, string reason)
    {
        foreach (var (id, w) in _workers.Where(kv => match(kv.Value)).ToList())
        {
            _workers.Remove(id);
            _log.Warning("worker {0} lost: {1}", id, reason);
            Context.System.EventStream.Publish(new WorkerLost(id, reason));
            foreach (var active in _runs.ToList()) Apply(active, run => run.OnWorkerLost(id, reason));
        }
    }

    private void Start(RunStage request)
    {
        if (Find(request.JobId, request.Stage) is not null)
        {
            Sender.Tell(new StageFinished(request.JobId, request.Stage, false, "this stage is already running", null, 0));
            return;
        }
        var transport = new RunTransport(request.Aggregation, request.Wire,
            request.Aggregation == GradientAggregation.Coordinator ? _reducer?.Endpoint : null);
        DataParallelRun run;
        try
        {
            run = new DataParallelRun(request.JobId, request.Stage, request.SpecYaml, request.Limits, transport, request.Quick,
                request.Resume, request.FirstGeneration);
        }
        catch (ArgumentException e)
        {
            Sender.Tell(new StageFinished(request.JobId, request.Stage, false, e.Message, null, 0));
            return;
        }
        var active = new ActiveRun(request, Sender, run, _arrivals++);
        _runs.Add(active);
        _runs.Sort((a, b) => a.Request.Priority != b.Request.Priority ? b.Request.Priority.CompareTo(a.Request.Priority) : a.Arrival.CompareTo(b.Arrival));
        _log.Info("stage {0}/{1}: waiting for {2}..{3} workers", request.JobId, request.Stage, request.Limits.MinWorkers, request.Limits.MaxWorkers);
        OfferFreeWorkers();
    }

    /// <summary>
    /// Workers in no group go to the runs still waiting for theirs, highest priority first; only when none waits
    /// are they offered to running runs below their maximum (which admit them at the next boundary).
    /// </summary>
    private void OfferFreeWorkers()
    {
        foreach (var waiting in new[] { true, false })
            foreach (var active in _runs.ToList())
            {
                if ((active.Run.Phase == RunPhase.WaitingForWorkers) != waiting) continue;
                var free = FreeWorkers();
                if (free.Count == 0) return;
                Apply(active, run => run.OnWorkersAvailable(free));
            }
    }

    private List<WorkerSlot> FreeWorkers()
    {
        var busy = _runs.SelectMany(r => r.Run.Members).Select(m => m.WorkerId).ToHashSet();
        return _workers.Values.Select(w => w.Slot).Where(s => !busy.Contains(s.WorkerId)).OrderBy(s => s.WorkerId, StringComparer.Ordinal).ToList();
    }

    private ActiveRun? Find(string jobId, string stage) => _runs.FirstOrDefault(r => r.Request.JobId == jobId && r.Request.Stage == stage);

    private void Apply(string jobId, string stage, Func<DataParallelRun, IReadOnlyList<RunCommand>> decide, bool progress = false)
    {
        if (Find(jobId, stage) is { } active) Apply(active, decide, progress);
    }

    /// <param name="progress">A worker reported progress; silence from workers, not from registrations, is what deadlines catch.</param>
    private void Apply(ActiveRun active, Func<DataParallelRun, IReadOnlyList<RunCommand>> decide, bool progress = false)
    {
        if (!_runs.Contains(active)) return;
        int generationBefore = active.Run.Generation;
        int membersBefore = active.Run.Members.Count;
        var commands = decide(active.Run);
        if (active.Run.Generation != generationBefore) OnNewGeneration(active, generationBefore);
        if (progress || active.Run.Generation != generationBefore) active.LastProgress = DateTime.UtcNow;
        bool finished = false;
        foreach (var command in commands)
        {
            switch (command)
            {
                case SendTo send when _workers.TryGetValue(send.WorkerId, out var w):
                    w.Ref.Tell(send.Message, Self);
                    break;
                case Finished f:
                    Finish(active, f);
                    finished = true;
                    break;
            }
        }
        // Workers a run let go (it finished, or re-forms smaller) are free for the others.
        if (finished || active.Run.Members.Count < membersBefore) OfferFreeWorkers();
    }

    private void OnNewGeneration(ActiveRun active, int previous)
    {
        var started = new GenerationStarted(active.Request.JobId, active.Request.Stage, active.Run.Generation,
            active.Run.Members.Select(m => m.WorkerId).ToList(), active.Run.RestartsUsed);
        Context.System.EventStream.Publish(started);
        active.ReplyTo.Tell(started);
        if (_reducer is null || active.Request.Aggregation != GradientAggregation.Coordinator) return;
        if (previous > active.Request.FirstGeneration) _reducer.EndGeneration(active.GroupId, previous);
        _reducer.BeginGeneration(active.GroupId, active.Run.Generation, active.Run.Members.Count, active.Request.Wire);
    }

    private void Finish(ActiveRun active, Finished f)
    {
        if (_reducer is not null && active.Request.Aggregation == GradientAggregation.Coordinator)
            _reducer.EndGeneration(active.GroupId, active.Run.Generation);
        string outcome = f.Succeeded ? "completed" : f.Stopped ? "stopped" : "failed";
        _log.Info("stage {0}/{1} {2}: {3}", active.Request.JobId, active.Request.Stage, outcome, f.Summary);
        var finished = new StageFinished(active.Request.JobId, active.Request.Stage, f.Succeeded, f.Summary, active.Run.LastCheckpoint,
            active.Run.RestartsUsed, f.Stopped);
        active.ReplyTo.Tell(finished);
        Context.System.EventStream.Publish(finished);
        _runs.Remove(active);
    }

    private void CheckDeadlines()
    {
        foreach (var active in _runs.ToList()) CheckDeadline(active);
    }

    private void CheckDeadline(ActiveRun active)
    {
        var limit = active.Run.Phase switch
        {
            RunPhase.WaitingForWorkers => _timeouts.Admission,
            RunPhase.Preparing => _timeouts.Prepare,
            RunPhase.Running => _timeouts.Step,
            RunPhase.Checkpointing => _timeouts.Checkpoint,
            _ => (TimeSpan?)null,
        };
        if (limit is null) return;
        if (active.Run.Phase == RunPhase.WaitingForWorkers && _workers.Count >= active.Request.Limits.MinWorkers)
        {
            // Enough workers exist but other stages hold them: that is a queue, not a failure.
            active.LastProgress = DateTime.UtcNow;
            return;
        }
        if (DateTime.UtcNow - active.LastProgress < limit) return;
        if (active.Run.Phase == RunPhase.WaitingForWorkers)
        {
            Apply(active, run => run.Abandon($"fewer than {active.Request.Limits.MinWorkers} workers were registered for {limit.Value.TotalSeconds:F0} s"));
            return;
        }
        var suspect = active.Run.Awaited().FirstOrDefault();
        if (suspect is null) return;
        string reason = $"no progress for {limit.Value.TotalSeconds:F0} s in phase {active.Run.Phase}";
        Apply(active, run => run.OnWorkerLost(suspect.WorkerId, reason));
    }

    private WorkersSnapshot Snapshot()
    {
        var placement = new Dictionary<string, (ActiveRun Run, int Rank)>();
        foreach (var active in _runs)
            for (int rank = 0; rank < active.Run.Members.Count; rank++) placement[active.Run.Members[rank].WorkerId] = (active, rank);
        return new WorkersSnapshot(_workers.Values.OrderBy(w => w.Slot.WorkerId, StringComparer.Ordinal).Select(w =>
        {
            bool busy = placement.TryGetValue(w.Slot.WorkerId, out var p);
            return new WorkerStatus(w.Slot.WorkerId, w.Slot.Node, w.Slot.Device, busy ? p.Run.Request.JobId : null,
                busy ? p.Run.Request.Stage : null, busy ? p.Rank : null);
        }).ToList());
    }

    private sealed class ActiveRun(RunStage request, IActorRef replyTo, DataParallelRun run, long arrival)
    {
        public RunStage Request { get; } = request;
        public IActorRef ReplyTo { get; } = replyTo;
        public DataParallelRun Run { get; } = run;
        public long Arrival { get; } = arrival;
        /// <summary>The data-plane group name: one job may run several stages at once.</summary>
        public string GroupId => DataPlaneGroups.Id(Request.JobId, Request.Stage);
        public DateTime LastProgress { get; set; } = DateTime.UtcNow;
    }

    private sealed class DeadlineTick { public static readonly DeadlineTick Instance = new(); }
}
