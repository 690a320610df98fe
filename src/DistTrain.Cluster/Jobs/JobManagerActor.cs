using System.Security.Cryptography;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;
using DistTrain.Execution;

namespace DistTrain.Cluster.Jobs;

/// <summary>
/// The job scheduler, a cluster singleton on coordinator-role nodes, event-sourced into Akka.Persistence.Sql.
/// It runs each job's stages as a DAG (a stage starts when every stage it depends on succeeded), hands training
/// stages to the coordinator (which runs several at once on disjoint workers, highest priority first), runs
/// label and evaluate stages on the workers through the coordinator (joining label shards here, <see cref="IInferenceRunner"/>), and records every fact in the journal
/// before acting on it. On recovery — after a kill -9 of its node, on the same or another coordinator node —
/// stages that were running are queued again and resume from their last recorded checkpoint.
/// </summary>
public sealed class JobManagerActor : ReceivePersistentActor, IWithTimers
{
    public const string PersistenceIdValue = "disttrain-jobs";
    private const int DefaultListLimit = 100, MaxListLimit = 1000;

    private readonly IActorRef _coordinator;
    private readonly IInferenceRunner _inference;
    private readonly string _runRoot;
    private readonly string? _dataRoot;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly JobBook _book = new();
    private readonly JobScheduler _scheduler;
    private readonly Dictionary<(string Job, string Stage), CancellationTokenSource> _local = new();
    private readonly List<ParkedPoll> _parked = new();
    private (int, int) _lastCounts = (-1, -1);
    private bool _scheduleRequested;

    public ITimerScheduler Timers { get; set; } = null!;
    public override string PersistenceId => PersistenceIdValue;

    public static Props Props(IActorRef coordinator, IInferenceRunner inference, string runRoot, string? dataRoot) =>
        Akka.Actor.Props.Create(() => new JobManagerActor(coordinator, inference, runRoot, dataRoot));

    public JobManagerActor(IActorRef coordinator, IInferenceRunner inference, string runRoot, string? dataRoot)
    {
        (_coordinator, _inference, _runRoot, _dataRoot) = (coordinator, inference, runRoot, dataRoot);
        _scheduler = new JobScheduler(_book, (job, stage) => RunReport.ReadStageMetrics(new StageArtifacts(runRoot, job, stage)));

        Recover<IJobJournalEvent>(e => _book.Apply(e));
        Recover<RecoveryCompleted>(_ => Self.Tell(Recovered.Instance));

        Command<Recovered>(_ => OnRecovered());
        Command<ScheduleNow>(_ => { _scheduleRequested = false; Execute(_scheduler.Schedule(Now)); PublishCounts(); });
        Command<SubmitJob>(Submit);
        Command<GetJob>(m => Sender.Tell(new JobLookup(_book.Find(m.JobId)?.View())));
        Command<ListJobs>(m => Sender.Tell(new JobList(_book.Jobs
            .Where(j => m.State is null || j.State == m.State)
            .Where(j => string.IsNullOrEmpty(m.Name) || j.Name == m.Name)
            .OrderByDescending(j => j.Order)
            .Take(m.Limit <= 0 ? DefaultListLimit : Math.Min(m.Limit, MaxListLimit))
            .Select(j => j.View()).ToList())));
        Command<CancelJob>(Cancel);
        Command<GetJobEvents>(Poll);
        Command<PollTick>(_ => ExpirePolls());

        Command<GenerationStarted>(m => Execute(_scheduler.OnGenerationStarted(m, Now)));
        Command<StepCompleted>(m => Execute(_scheduler.OnStep(m, Now)));
        Command<CheckpointSaved>(m => Execute(_scheduler.OnCheckpoint(m, Now)));
        Command<StageFinished>(m => { Execute(_scheduler.OnStageFinished(m, Now)); RequestSchedule(); });
        Command<ShardDone>(m => Execute(_scheduler.OnShardDone(m, Now)));
        Command<ShardFailed>(m => Execute(_scheduler.OnShardFailed(m, Now)));
        Command<LocalDone>(d =>
        {
            _local.Remove((d.JobId, d.Stage));
            Execute(_scheduler.OnLocalDone(d.JobId, d.Stage, d.Metrics, d.Error, Now));
            RequestSchedule();
        });
    }

    protected override void PreStart() => Timers.StartPeriodicTimer("polls", PollTick.Instance, TimeSpan.FromSeconds(1));

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private void OnRecovered()
    {
        int jobs = _book.Live().Count();
        if (jobs > 0) _log.Info("job manager recovered {0} unfinished job(s)", jobs);
        Execute(_scheduler.Recovered(Now));
        RequestSchedule();
    }

    /// <summary>
    /// Scheduling runs as a command of its own: commands wait while records persist, so it always decides on a book
    /// that holds every earlier record, and never takes the same decision twice.
    /// </summary>
    private void RequestSchedule()
    {
        if (_scheduleRequested) return;
        _scheduleRequested = true;
        Self.Tell(ScheduleNow.Instance);
    }

    /// <summary>
    /// Carries out the scheduler's decisions in order: records are persisted (together, up to the next action), and each
    /// action — a message to the coordinator, local work, a cancellation, the report — runs once the records before it
    /// are in the journal, so nothing is acted on that the journal does not hold.
    /// </summary>
    private void Execute(IReadOnlyList<SchedulerCommand> commands)
    {
        var facts = new List<IJobJournalEvent>();
        foreach (var command in commands)
        {
            if (command is RecordFact r)
            {
                facts.Add(r.Fact);
                if (r.Fact is JobEnded ended) _log.Info("job {0} {1}", ended.JobId, ended.State.ToString().ToLowerInvariant());
                continue;
            }
            PersistFacts(facts);
            DeferAsync(command, Act);
        }
        PersistFacts(facts);
    }

    private void Act(SchedulerCommand command)
    {
        switch (command)
        {
            case SendToCoordinator s:
                _coordinator.Tell(s.Request, Self);
                break;
            case RunLocally l:
                RunOffActor(l);
                break;
            case CancelLocal c:
                if (_local.TryGetValue((c.JobId, c.Stage), out var cancel)) cancel.Cancel();
                break;
            case WriteReport w:
                WriteReportOf(w.JobId);
                break;
            default:
                throw new InvalidOperationException($"unknown scheduler command {command}");
        }
    }

    private void PersistFacts(List<IJobJournalEvent> facts)
    {
        if (facts.Count == 0) return;
        PersistAll(facts.ToList(), Applied);
        facts.Clear();
    }

    private void Submit(SubmitJob m)
    {
        if (SpecInput.Admit(m.SpecYaml) is { } refused)
        {
            Sender.Tell(new SubmitOutcome(null, [refused]));
            return;
        }
        var parsed = JobSpecs.Load(m.SpecYaml, _dataRoot, m.Quick);
        if (!parsed.Ok)
        {
            Sender.Tell(new SubmitOutcome(null, parsed.Errors));
            return;
        }
        var spec = parsed.Spec!;
        string id = $"{spec.Name}-{Now:yyyyMMdd-HHmmss}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}";
        var replyTo = Sender;
        Persist(new JobSubmitted(id, spec.Name, spec.Priority, m.SpecYaml, m.Quick, Now), e =>
        {
            Applied(e);
            _log.Info("job {0} submitted ({1} stage(s), priority {2})", id, spec.Stages.Count, spec.Priority);
            replyTo.Tell(new SubmitOutcome(id, []));
            RequestSchedule();
        });
    }

    private void Cancel(CancelJob m)
    {
        var job = _book.Find(m.JobId);
        if (job is null) { Sender.Tell(new CancelReply(CancelOutcome.NotFound, null)); return; }
        if (job.State.IsFinal()) { Sender.Tell(new CancelReply(CancelOutcome.AlreadyEnded, job.View())); return; }
        var replyTo = Sender;
        Execute(_scheduler.Cancel(job, Now));
        DeferAsync(Recovered.Instance, _ => replyTo.Tell(new CancelReply(CancelOutcome.Cancelling, job.View())));
        RequestSchedule();
    }

    /// <summary>Runs a stage's local work (evaluate, the label merge) on the thread pool; its end comes back as <see cref="LocalDone"/>.</summary>
    private void RunOffActor(RunLocally work)
    {
        var job = _book.Find(work.JobId)!;
        var (spec, stageSpec, artifacts) = (job.Spec, job.Stage(work.Stage).Spec, new StageArtifacts(_runRoot, work.JobId, work.Stage));
        var cancel = new CancellationTokenSource();
        _local[(work.JobId, work.Stage)] = cancel;
        Func<CancellationToken, IReadOnlyDictionary<string, double>> run = work.Work switch
        {
            LocalWork.MergeLabels => _ => _inference.MergeLabels(spec, stageSpec, artifacts, LabelShards.Count(stageSpec)),
            _ => throw new InvalidOperationException($"unknown local work {work.Work}"),
        };
        var (jobId, stage) = (work.JobId, work.Stage);
        Task.Run(() => run(cancel.Token), cancel.Token).PipeTo(Self,
            success: metrics => new LocalDone(jobId, stage, metrics, null),
            failure: e => new LocalDone(jobId, stage, null, e is AggregateException { InnerException: { } i } ? i : e));
    }

    private void WriteReportOf(string jobId)
    {
        if (_book.Find(jobId) is not { } job) return;
        var done = job.Stages.Where(s => s.State == JobState.Succeeded).ToDictionary(s => s.Name, s => s.Metrics);
        try { RunReport.Write(Path.Combine(_runRoot, job.JobId), job.Name, done); }
        catch (IOException e) { _log.Warning("job {0}: report.json not written: {1}", job.JobId, e.Message); }
    }

    /// <summary>Applies a persisted record, publishes it, and answers watchers waiting on the job.</summary>
    private void Applied(IJobJournalEvent e)
    {
        var job = _book.Find(e.JobId);
        int before = job?.Events.Count ?? 0;
        job = _book.Apply(e);
        foreach (var ev in job.Events.Skip(before))
            Context.System.EventStream.Publish(new JobActivity(job.JobId, job.Name, ev));
        if (job.Events.Count > before) AnswerPolls(job);
        PublishCounts();
    }

    private void PublishCounts()
    {
        var counts = _book.Counts();
        if (counts == _lastCounts) return;
        _lastCounts = counts;
        Context.System.EventStream.Publish(new JobQueueChanged(counts.Queued, counts.Running));
    }

    private void Poll(GetJobEvents m)
    {
        var job = _book.Find(m.JobId);
        if (job is null) { Sender.Tell(new JobEventsPage(false, [], false)); return; }
        var page = Page(job, m.After, m.Max);
        if (page.Events.Count > 0 || page.Ended || m.Wait <= TimeSpan.Zero) { Sender.Tell(page); return; }
        _parked.Add(new ParkedPoll(Sender, m, DateTime.UtcNow + m.Wait));
    }

    private static JobEventsPage Page(JobEntry job, long after, int max)
    {
        var events = job.Events.Skip((int)Math.Clamp(after, 0, job.Events.Count)).Take(Math.Clamp(max, 1, 10_000)).ToList();
        return new JobEventsPage(true, events, job.State.IsFinal() && events.Count == 0);
    }

    private void AnswerPolls(JobEntry job)
    {
        foreach (var p in _parked.Where(p => p.Request.JobId == job.JobId).ToList())
        {
            _parked.Remove(p);
            p.ReplyTo.Tell(Page(job, p.Request.After, p.Request.Max));
        }
    }

    private void ExpirePolls()
    {
        var now = DateTime.UtcNow;
        foreach (var p in _parked.Where(p => p.Deadline <= now).ToList())
        {
            _parked.Remove(p);
            p.ReplyTo.Tell(new JobEventsPage(true, [], false));
        }
    }

    private sealed record ParkedPoll(IActorRef ReplyTo, GetJobEvents Request, DateTime Deadline);
    private sealed record LocalDone(string JobId, string Stage, IReadOnlyDictionary<string, double>? Metrics, Exception? Error);
    private sealed class Recovered { public static readonly Recovered Instance = new(); }
    private sealed class PollTick { public static readonly PollTick Instance = new(); }
    private sealed class ScheduleNow { public static readonly ScheduleNow Instance = new(); }
}
