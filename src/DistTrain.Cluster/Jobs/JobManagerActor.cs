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
/// label and evaluate stages through <see cref="IInferenceRunner"/>, and records every fact in the journal
/// before acting on it. On recovery — after a kill -9 of its node, on the same or another coordinator node —
/// stages that were running are queued again and resume from their last recorded checkpoint.
/// </summary>
public sealed class JobManagerActor : ReceivePersistentActor, IWithTimers
{
    public const string PersistenceIdValue = "disttrain-jobs";
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(1);
    private const int DefaultListLimit = 100, MaxListLimit = 1000;

    private readonly IActorRef _coordinator;
    private readonly IInferenceRunner _inference;
    private readonly string _runRoot;
    private readonly string? _dataRoot;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly JobBook _book = new();
    private readonly Dictionary<(string Job, string Stage), InFlight> _inFlight = new();
    private readonly Dictionary<(string Job, string Stage, int Rank), DateTime> _lastProgress = new();
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

        Recover<IJobJournalEvent>(e => _book.Apply(e));
        Recover<RecoveryCompleted>(_ => Self.Tell(Recovered.Instance));

        Command<Recovered>(_ => OnRecovered());
        Command<ScheduleNow>(_ => { _scheduleRequested = false; Schedule(); });
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

        Command<GenerationStarted>(OnGenerationStarted);
        Command<StepCompleted>(OnStep);
        Command<CheckpointSaved>(m => Record(new StageCheckpointed(m.JobId, m.Stage, m.Step, m.Path, Now)));
        Command<StageFinished>(OnStageFinished);
        Command<ShardDone>(OnShardDone);
        Command<ShardFailed>(m => Record(new JobNoted(m.JobId, $"stage {m.Stage}: shard {m.Shard} failed on a worker ({m.Reason}); it will be retried", Now)));
        Command<InferenceDone>(OnInferenceDone);
    }

    protected override void PreStart() => Timers.StartPeriodicTimer("polls", PollTick.Instance, TimeSpan.FromSeconds(1));

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private void OnRecovered()
    {
        int jobs = _book.Live().Count();
        if (jobs > 0) _log.Info("job manager recovered {0} unfinished job(s)", jobs);
        // Runs die with the coordinator: a stage that was running must be dispatched again, from its checkpoint.
        foreach (var job in _book.Live().ToList())
            foreach (var stage in job.Stages.Where(s => s.State == JobState.Running).ToList())
            {
                string from = stage.Checkpoint is { } c ? $"its checkpoint of step {c.Step}" : "the start (no checkpoint was recorded)";
                Record(new StageRequeued(job.JobId, stage.Name, $"the coordinator restarted; resuming from {from}", Now));
            }
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
        if (!job.CancelRequested) Record(new JobCancelRequested(job.JobId, Now));
        DeferAsync(Recovered.Instance, _ => replyTo.Tell(new CancelReply(CancelOutcome.Cancelling, job.View())));
        RequestSchedule();
    }

    /// <summary>Dispatches every ready stage of every live job, in priority order.</summary>
    private void Schedule()
    {
        foreach (var job in _book.Live().ToList())
        {
            Settle(job);
            if (job.State.IsFinal()) continue;
            foreach (var stage in JobBook.Ready(job).ToList())
                if (!_inFlight.ContainsKey((job.JobId, stage.Name))) Dispatch(job, stage);
        }
        PublishCounts();
    }

    /// <summary>Winds a stopping job down (stops what runs, cancels what waits) and ends jobs that are done.</summary>
    private void Settle(JobEntry job)
    {
        if (job.State.IsFinal()) return;
        string why = job.CancelRequested ? "the job was cancelled" : "an upstream stage failed";
        if (job.Stopping)
            foreach (var (key, run) in _inFlight.Where(kv => kv.Key.Job == job.JobId && !kv.Value.StopSent).ToList())
            {
                run.StopSent = true;
                if (run.Inference is { } cancel) cancel.Cancel();
                else _coordinator.Tell(new StopStage(job.JobId, key.Stage, why));
            }
        if (JobBook.Settlement(job, _inFlight.Keys.Any(k => k.Job == job.JobId)) is not { } end) return;
        foreach (var stage in end.CancelQueued) EndStage(job.JobId, stage.Name, JobState.Cancelled, why);
        Record(new JobEnded(job.JobId, end.State, end.Error, Now));
        _log.Info("job {0} {1}", job.JobId, end.State.ToString().ToLowerInvariant());
    }

    private void Dispatch(JobEntry job, StageEntry stage)
    {
        int attempt = stage.Attempts + 1;
        Record(new StageDispatched(job.JobId, stage.Name, attempt, Now));
        if (stage.Spec.Kind.Trains())
        {
            _inFlight[(job.JobId, stage.Name)] = new InFlight(null);
            _coordinator.Tell(RunRequest(job, stage, attempt), Self);
            return;
        }
        if (stage.Spec.Kind == StageKind.Label)
        {
            // Distributed inference: shards over every free worker; shards already on storage are reused.
            _inFlight[(job.JobId, stage.Name)] = new InFlight(null);
            _coordinator.Tell(new RunInference(job.JobId, stage.Name, job.SpecYaml, job.Quick, LabelShards.Count(stage.Spec), SpecLimits.MaxWorkers, job.Priority), Self);
            return;
        }
        Record(new StageStarted(job.JobId, stage.Name, [Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString()], Now));
        var (spec, stageSpec, artifacts) = (job.Spec, stage.Spec, new StageArtifacts(_runRoot, job.JobId, stage.Name));
        RunOffActor(job.JobId, stage.Name, ct => _inference.Evaluate(spec, stageSpec, artifacts, ct));
    }

    /// <summary>Each dispatch numbers its groups apart, so workers' messages from an earlier attempt never match.</summary>
    public const int GenerationsPerAttempt = 1000;

    public static int FirstGenerationOf(int attempt) => attempt * GenerationsPerAttempt;

    /// <summary>
    /// The coordinator's request for attempt <paramref name="attempt"/> of a training stage: from its last recorded
    /// checkpoint, with generations numbered apart, and with the restarts the stage already used (from the journal), so
    /// a coordinator fail-over neither resets the restart budget nor the reported count.
    /// </summary>
    public static RunStage RunRequest(JobEntry job, StageEntry stage, int attempt) =>
        StageRequests.For(job.JobId, job.SpecYaml, job.Quick, stage.Spec) with
        {
            Priority = job.Priority,
            Resume = stage.Checkpoint is { } c ? new RunResume(c.Path, c.Step) : null,
            FirstGeneration = FirstGenerationOf(attempt),
            RestartsUsed = stage.Restarts,
        };

    /// <summary>Runs a stage's work (evaluate, the label merge) on the thread pool; its end comes back as <see cref="InferenceDone"/>.</summary>
    private void RunOffActor(string jobId, string stage, Func<CancellationToken, IReadOnlyDictionary<string, double>> work)
    {
        var cancel = new CancellationTokenSource();
        _inFlight[(jobId, stage)] = new InFlight(cancel);
        Task.Run(() => work(cancel.Token), cancel.Token).PipeTo(Self,
            success: metrics => new InferenceDone(jobId, stage, metrics, null),
            failure: e => new InferenceDone(jobId, stage, null, e is AggregateException { InnerException: { } i } ? i : e));
    }

    private void OnGenerationStarted(GenerationStarted g)
    {
        var job = _book.Find(g.JobId);
        if (job is null || job.State.IsFinal()) return;
        var stage = job.Stage(g.Stage);
        if (stage.State == JobState.Queued) Record(new StageStarted(g.JobId, g.Stage, g.Workers, Now));
        else
        {
            string message = $"stage {g.Stage}: group re-formed with {g.Workers.Count} worker(s) (generation {g.Generation}, {g.RestartsUsed} restart(s) used)";
            Record(g.RestartsUsed > stage.Restarts ? new StageRestarted(g.JobId, g.Stage, g.RestartsUsed, message, Now) : new JobNoted(g.JobId, message, Now));
        }
    }

    private void OnStep(StepCompleted m)
    {
        var job = _book.Find(m.JobId);
        if (job is null || job.State.IsFinal()) return;
        var stage = job.Stage(m.Stage);
        var key = (m.JobId, m.Stage, m.Rank);
        bool last = m.Step + 1 >= stage.TotalSteps;
        if (!last && _lastProgress.TryGetValue(key, out var at) && DateTime.UtcNow - at < ProgressEvery) return;
        _lastProgress[key] = DateTime.UtcNow;
        double tokensPerSecond = m.StepSeconds > 0 ? m.Targets / m.StepSeconds : 0;
        Record(new StageProgressed(m.JobId, m.Stage, m.Rank, m.Step, stage.TotalSteps, m.Loss, tokensPerSecond, Now));
    }

    private void OnShardDone(ShardDone m)
    {
        var job = _book.Find(m.JobId);
        if (job is null || job.State.IsFinal()) return;
        var stage = job.Stage(m.Stage);
        // Progress of a label stage counts shards: this is shard number Step (0-based) to finish, of the stage's fixed count.
        Record(new StageProgressed(m.JobId, m.Stage, -1, stage.Step, LabelShards.Count(stage.Spec), 0, m.Seconds > 0 ? m.Examples / m.Seconds : 0, Now));
    }

    private void OnStageFinished(StageFinished f)
    {
        var job = _book.Find(f.JobId);
        if (job is not null && !job.State.IsFinal() && f.Succeeded && job.Stage(f.Stage).Spec.Kind == StageKind.Label && !job.CancelRequested)
        {
            // Every shard is on storage: join them into the stage's one checksummed label file, off the actor.
            var (spec, stageSpec, artifacts) = (job.Spec, job.Stage(f.Stage).Spec, new StageArtifacts(_runRoot, f.JobId, f.Stage));
            RunOffActor(f.JobId, f.Stage, _ => _inference.MergeLabels(spec, stageSpec, artifacts, LabelShards.Count(stageSpec)));
            return;
        }
        _inFlight.Remove((f.JobId, f.Stage));
        if (job is null || job.State.IsFinal()) return;
        if (f.Succeeded)
            EndSucceeded(job, f.Stage, () => new Dictionary<string, double>(RunReport.ReadStageMetrics(new StageArtifacts(_runRoot, f.JobId, f.Stage)))
            {
                ["restarts"] = f.Restarts,
            });
        else if (f.Stopped) EndStage(f.JobId, f.Stage, JobState.Cancelled, f.Summary);
        else EndStage(f.JobId, f.Stage, JobState.Failed, f.Summary);
        RequestSchedule();
    }

    private void OnInferenceDone(InferenceDone d)
    {
        _inFlight.Remove((d.JobId, d.Stage));
        var job = _book.Find(d.JobId);
        if (job is null || job.State.IsFinal()) return;
        if (d.Metrics is { } metrics) EndSucceeded(job, d.Stage, () => metrics);
        else if (d.Error is OperationCanceledException && job.CancelRequested)
            EndStage(d.JobId, d.Stage, JobState.Cancelled, "the job was cancelled");
        else EndStage(d.JobId, d.Stage, JobState.Failed, d.Error?.Message ?? "unknown error");
        RequestSchedule();
    }

    private void EndSucceeded(JobEntry job, string stage, Func<IReadOnlyDictionary<string, double>> metrics)
    {
        IReadOnlyDictionary<string, double> m;
        try { m = metrics(); }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or UnauthorizedAccessException)
        {
            EndStage(job.JobId, stage, JobState.Failed, $"its metrics could not be read: {e.Message}");
            return;
        }
        Record(new StageEnded(job.JobId, stage, JobState.Succeeded, null, m, Now));
        DeferAsync(Recovered.Instance, _ =>
        {
            var done = job.Stages.Where(s => s.State == JobState.Succeeded).ToDictionary(s => s.Name, s => s.Metrics);
            try { RunReport.Write(Path.Combine(_runRoot, job.JobId), job.Name, done); }
            catch (IOException e) { _log.Warning("job {0}: report.json not written: {1}", job.JobId, e.Message); }
        });
    }

    /// <summary>A stage ended without metrics (failed or cancelled), for <paramref name="why"/>.</summary>
    private void EndStage(string jobId, string stage, JobState state, string? why) =>
        Record(new StageEnded(jobId, stage, state, why, new Dictionary<string, double>(), Now));

    /// <summary>Persists one record, then applies it, publishes it, and answers watchers waiting on the job.</summary>
    private void Record(IJobJournalEvent e) => Persist(e, Applied);

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

    private sealed class InFlight(CancellationTokenSource? inference)
    {
        public CancellationTokenSource? Inference { get; } = inference;
        public bool StopSent { get; set; }
    }

    private sealed record ParkedPoll(IActorRef ReplyTo, GetJobEvents Request, DateTime Deadline);
    private sealed record InferenceDone(string JobId, string Stage, IReadOnlyDictionary<string, double>? Metrics, Exception? Error);
    private sealed class Recovered { public static readonly Recovered Instance = new(); }
    private sealed class PollTick { public static readonly PollTick Instance = new(); }
    private sealed class ScheduleNow { public static readonly ScheduleNow Instance = new(); }
}
