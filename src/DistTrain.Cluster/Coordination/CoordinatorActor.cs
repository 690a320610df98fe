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
        Receive<RunInference>(StartInference);
        Receive<StopStage>(m => { if (Find(m.JobId, m.Stage) is { } a) Apply(a, _ => a.Run.RequestStop(m.Reason)); });
        Receive<ShardDone>(m => OnShard(m.JobId, m.Stage, m, (run, worker) => run.OnShardDone(m, worker)));
        Receive<ShardFailed>(m => OnShard(m.JobId, m.Stage, m, (run, worker) => run.OnShardFailed(m, worker)));
        Receive<GetWorkers>(_ => Sender.Tell(Snapshot()));
        Receive<GroupPrepared>(m => Apply(m.JobId, m.Stage, run => run.OnPrepared(m), progress: true));
        Receive<StepsCompleted>(b =>
        {
            foreach (var m in b.Steps) Apply(m.JobId, m.Stage, run => run.OnStepCompleted(m), progress: true);
        });
        Receive<CheckpointSaved>(m => Apply(m.JobId, m.Stage, run => run.OnCheckpointSaved(m), progress: true));
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
            foreach (var active in _runs.ToList()) Apply(active, a => a.Run.OnWorkerLost(id, reason));
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
                request.Resume, request.FirstGeneration, request.RestartsUsed);
        }
        catch (ArgumentException e)
        {
            Sender.Tell(new StageFinished(request.JobId, request.Stage, false, e.Message, null, 0));
            return;
        }
        Admit(new ActiveRun(request.JobId, request.Stage, request.Priority, request.Limits.MinWorkers, Sender, _arrivals++, run));
        _log.Info("stage {0}/{1}: waiting for {2}..{3} workers", request.JobId, request.Stage, request.Limits.MinWorkers, request.Limits.MaxWorkers);
    }

    private void StartInference(RunInference request)
    {
        if (Find(request.JobId, request.Stage) is not null)
        {
            Sender.Tell(new StageFinished(request.JobId, request.Stage, false, "this stage is already running", null, 0));
            return;
        }
        InferenceRun run;
        try { run = new InferenceRun(request.JobId, request.Stage, request.SpecYaml, request.Quick, request.ShardCount, request.MaxWorkers); }
        catch (ArgumentException e)
        {
            Sender.Tell(new StageFinished(request.JobId, request.Stage, false, e.Message, null, 0));
            return;
        }
        Admit(new ActiveRun(request.JobId, request.Stage, request.Priority, 1, Sender, _arrivals++, run));
        _log.Info("stage {0}/{1}: {2} shard(s) for up to {3} workers", request.JobId, request.Stage, request.ShardCount, request.MaxWorkers);
    }

    private void Admit(ActiveRun active)
    {
        _runs.Add(active);
        _runs.Sort((a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Arrival.CompareTo(b.Arrival));
        OfferFreeWorkers();
    }

    private void OnShard(string jobId, string stage, object message, Func<InferenceRun, string, IReadOnlyList<RunCommand>> decide)
    {
        var worker = _workers.FirstOrDefault(kv => kv.Value.Ref.Equals(Sender)).Key;
        if (worker is null || Find(jobId, stage) is not { Run: InferenceRun run } active) return;
        active.ReplyTo.Tell(message);
        active.LastProgress = DateTime.UtcNow;
        Apply(active, _ => decide(run, worker));
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
                if ((active.Phase == RunPhase.WaitingForWorkers) != waiting) continue;
                var free = FreeWorkers();
                if (free.Count == 0) return;
                Apply(active, a => a.Run.OnWorkersAvailable(free));
            }
    }

    private List<WorkerSlot> FreeWorkers()
    {
        var busy = _runs.SelectMany(r => r.Members).Select(m => m.WorkerId).ToHashSet();
        return _workers.Values.Select(w => w.Slot).Where(s => !busy.Contains(s.WorkerId)).OrderBy(s => s.WorkerId, StringComparer.Ordinal).ToList();
    }

    private ActiveRun? Find(string jobId, string stage) => _runs.FirstOrDefault(r => r.JobId == jobId && r.Stage == stage);

    /// <summary>Applies a decision of a training run (messages of data-parallel groups).</summary>
    private void Apply(string jobId, string stage, Func<DataParallelRun, IReadOnlyList<RunCommand>> decide, bool progress = false)
    {
        if (Find(jobId, stage) is { Run: DataParallelRun run } active) Apply(active, _ => decide(run), progress);
    }

    /// <param name="progress">A worker reported progress; silence from workers, not from registrations, is what deadlines catch.</param>
    private void Apply(ActiveRun active, Func<ActiveRun, IReadOnlyList<RunCommand>> decide, bool progress = false)
    {
        if (!_runs.Contains(active)) return;
        int membersBefore = active.Members.Count;
        var commands = decide(active);
        if (progress) active.LastProgress = DateTime.UtcNow;
        bool finished = false;
        foreach (var command in commands)
        {
            switch (command)
            {
                case SendTo send when _workers.TryGetValue(send.WorkerId, out var w):
                    w.Ref.Tell(send.Message, Self);
                    break;
                case SendTo:
                    break;   // the worker left the registry; the run learns of it through OnWorkerLost
                case StepReported r:
                    Context.System.EventStream.Publish(r.Step);
                    active.ReplyTo.Tell(r.Step);
                    break;
                case CheckpointReported c:
                    active.ReplyTo.Tell(c.Checkpoint);
                    break;
                case GroupFormed g:
                    var started = new GenerationStarted(active.JobId, active.Stage, g.Generation, g.Workers, g.RestartsUsed);
                    if (g.Lockstep) Context.System.EventStream.Publish(started);
                    active.ReplyTo.Tell(started);
                    active.LastProgress = DateTime.UtcNow;
                    break;
                case StartReducer r:
                    _reducer?.BeginGeneration(active.GroupId, r.Generation, r.WorldSize, r.Wire, r.Secret);
                    break;
                case EndReducer r:
                    _reducer?.EndGeneration(active.GroupId, r.Generation);
                    break;
                case Finished f:
                    Finish(active, f);
                    finished = true;
                    break;
                default:
                    throw new InvalidOperationException($"unknown run command {command}");
            }
        }
        // Workers a run let go (it finished, or re-forms smaller) are free for the others.
        if (finished || active.Members.Count < membersBefore) OfferFreeWorkers();
    }

    private void Finish(ActiveRun active, Finished f)
    {
        string outcome = f.Succeeded ? "completed" : f.Stopped ? "stopped" : "failed";
        _log.Info("stage {0}/{1} {2}: {3}", active.JobId, active.Stage, outcome, f.Summary);
        var finished = new StageFinished(active.JobId, active.Stage, f.Succeeded, f.Summary, active.Run.LastCheckpoint, active.Run.RestartsUsed, f.Stopped);
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
        var limit = active.Phase switch
        {
            RunPhase.WaitingForWorkers => _timeouts.Admission,
            RunPhase.Preparing => _timeouts.Prepare,
            RunPhase.Running => _timeouts.Step,
            RunPhase.Checkpointing => _timeouts.Checkpoint,
            _ => (TimeSpan?)null,
        };
        if (limit is null) return;
        if (active.Phase == RunPhase.WaitingForWorkers && _workers.Count >= active.MinWorkers)
        {
            // Enough workers exist but other stages hold them: that is a queue, not a failure.
            active.LastProgress = DateTime.UtcNow;
            return;
        }
        if (DateTime.UtcNow - active.LastProgress < limit) return;
        if (active.Phase == RunPhase.WaitingForWorkers)
        {
            Apply(active, a => a.Run.Abandon($"fewer than {active.MinWorkers} workers were registered for {limit.Value.TotalSeconds:F0} s"));
            return;
        }
        // An inference run awaits no one: a shard has no step deadline; a lost worker returns it to the pool.
        if (active.Run.Awaited().FirstOrDefault() is not { } suspect) return;
        string reason = $"no progress for {limit.Value.TotalSeconds:F0} s in phase {active.Phase}";
        Apply(active, a => a.Run.OnWorkerLost(suspect.WorkerId, reason));
    }

    private WorkersSnapshot Snapshot()
    {
        var placement = new Dictionary<string, (ActiveRun Run, int Rank)>();
        foreach (var active in _runs)
            for (int rank = 0; rank < active.Members.Count; rank++) placement[active.Members[rank].WorkerId] = (active, rank);
        return new WorkersSnapshot(_workers.Values.OrderBy(w => w.Slot.WorkerId, StringComparer.Ordinal).Select(w =>
        {
            bool busy = placement.TryGetValue(w.Slot.WorkerId, out var p);
            return new WorkerStatus(w.Slot.WorkerId, w.Slot.Node, w.Slot.Device, busy ? p.Run.JobId : null,
                busy ? p.Run.Stage : null, busy ? p.Rank : null);
        }).ToList());
    }

    /// <summary>One stage the coordinator runs (<see cref="IStageRun"/>), with what the actor keeps about it.</summary>
    private sealed class ActiveRun(string jobId, string stage, int priority, int minWorkers, IActorRef replyTo, long arrival, IStageRun run)
    {
        public string JobId { get; } = jobId;
        public string Stage { get; } = stage;
        public int Priority { get; } = priority;
        public int MinWorkers { get; } = minWorkers;
        public IActorRef ReplyTo { get; } = replyTo;
        public long Arrival { get; } = arrival;
        public IStageRun Run { get; } = run;
        /// <summary>The data-plane group name: one job may run several stages at once.</summary>
        public string GroupId => DataPlaneGroups.Id(JobId, Stage);
        public DateTime LastProgress { get; set; } = DateTime.UtcNow;
        public RunPhase Phase => Run.Phase;
        public IReadOnlyList<WorkerSlot> Members => Run.Members;
    }

    private sealed class DeadlineTick { public static readonly DeadlineTick Instance = new(); }
}
