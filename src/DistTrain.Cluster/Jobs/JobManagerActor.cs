using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
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
/// <remarks>
/// It serves no watchers: <see cref="JobEventFeed"/> reads the same journal. Every <c>disttrain.jobs.snapshot-every</c>
/// records it saves a snapshot of its book (and deletes the older ones), so recovery reads that snapshot and the records
/// after it. The journal keeps every record: the read side replays a job's records from it, and a snapshot that cannot
/// be read is not fatal, the book is rebuilt from the journal instead.
/// </remarks>
public sealed class JobManagerActor : ReceivePersistentActor
{
    public const string PersistenceIdValue = "disttrain-jobs";
    public const string SnapshotEverySetting = "disttrain.jobs.snapshot-every";
    /// <summary>Used where the configuration does not say (cluster-config/akka.hocon does).</summary>
    public const int DefaultSnapshotEvery = 1000;
    private const int DefaultListLimit = 100, MaxListLimit = 1000;
    private static readonly TimeSpan RebuildTimeout = TimeSpan.FromMinutes(5);

    private readonly IActorRef _coordinator;
    private readonly IInferenceRunner _inference;
    private readonly string _runRoot;
    private readonly string? _dataRoot;
    private readonly ICheckpointModelReader? _checkpoints;
    private readonly int _snapshotEvery;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<(string Job, string Stage), CancellationTokenSource> _local = new();
    private JobBook _book = null!;
    private JobScheduler _scheduler = null!;
    private (int, int) _lastCounts = (-1, -1);
    private bool _scheduleRequested;
    private bool _live;                      // recovered: events of applied records are published
    private long _sinceSnapshot;             // records since the last snapshot (or since the journal's start)
    private (long SequenceNr, string Reason)? _unreadable;   // a snapshot offered on recovery that could not be read

    public override string PersistenceId => PersistenceIdValue;

    /// <param name="checkpoints">Fills the model section of stages with an hf: init from config.json under dataRoot at
    /// submission; the filled text is what the job stores and its workers parse (HfModelSections).</param>
    public static Props Props(IActorRef coordinator, IInferenceRunner inference, string runRoot, string? dataRoot, ICheckpointModelReader? checkpoints = null) =>
        Akka.Actor.Props.Create(() => new JobManagerActor(coordinator, inference, runRoot, dataRoot, checkpoints));

    public JobManagerActor(IActorRef coordinator, IInferenceRunner inference, string runRoot, string? dataRoot, ICheckpointModelReader? checkpoints = null)
    {
        (_coordinator, _inference, _runRoot, _dataRoot, _checkpoints) = (coordinator, inference, runRoot, dataRoot, checkpoints);
        _snapshotEvery = Context.System.Settings.Config.GetInt(SnapshotEverySetting, DefaultSnapshotEvery);
        if (_snapshotEvery <= 0)
            throw new ConfigurationException($"{SnapshotEverySetting} is {_snapshotEvery}: it must be a positive number of journal records");
        UseBook(new JobBook(Published));

        Recover<SnapshotOffer>(Restore);
        Recover<IJobJournalEvent>(e =>
        {
            if (_unreadable is null) _book.Apply(e);   // else the whole journal is replayed once recovery completes
            _sinceSnapshot++;
        });
        Recover<RecoveryCompleted>(_ => Self.Tell(Recovered.Instance));
        Ready();
    }

    private void Ready()
    {
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

        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(f => _log.Warning("job manager: the snapshot at record {0} was not saved ({1}); recovery reads the journal from the previous one",
            f.Metadata.SequenceNr, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("job manager: older snapshots were not deleted ({0})", f.Cause.Message));
    }

    /// <summary>Waiting for the journal's records after an unreadable snapshot: every other message waits too.</summary>
    private void Rebuilding()
    {
        Command<Rebuilt>(r =>
        {
            var book = new JobBook(Published);
            foreach (var record in r.Records) book.Apply(record);
            UseBook(book);
            _unreadable = null;
            _log.Info("job manager: rebuilt the job book from {0} journal record(s)", r.Records.Count);
            SaveSnapshot(_book.Snapshot());   // replaces the unreadable one once saved
            _sinceSnapshot = 0;
            Become(Ready);
            Stash.UnstashAll();
            OnRecovered();
        });
        Command<Status.Failure>(f => throw new InvalidOperationException($"job manager: the journal could not be read after an unreadable snapshot: {f.Cause.Message}", f.Cause));
        CommandAny(_ => Stash.Stash());
    }

    private void UseBook(JobBook book)
    {
        _book = book;
        _scheduler = new JobScheduler(book, (job, stage) => RunReport.ReadStageMetrics(new StageArtifacts(_runRoot, job, stage)));
    }

    /// <summary>
    /// A snapshot offered on recovery: the book it describes, or — when it cannot be read — nothing yet: the journal's
    /// records are then read from the start once recovery completes (<see cref="RebuildFromJournal"/>), so no job is lost.
    /// </summary>
    private void Restore(SnapshotOffer offer)
    {
        try
        {
            var snapshot = offer.Snapshot switch
            {
                JobBookSnapshot s => s,
                UnreadableSnapshot u => throw new InvalidDataException(u.Reason),
                var other => throw new InvalidDataException($"it holds a {other.GetType().Name}, not a job book"),
            };
            UseBook(JobBook.Restore(snapshot, Published));
            _log.Info("job manager: recovering from the snapshot at record {0} and the records after it", offer.Metadata.SequenceNr);
        }
        catch (Exception e)
        {
            _unreadable = (offer.Metadata.SequenceNr, e.Message);
        }
    }

    private void RebuildFromJournal()
    {
        var (at, reason) = _unreadable!.Value;
        _log.Warning("job manager: the snapshot at record {0} cannot be read ({1}); rebuilding the job book from the journal's {2} record(s)",
            at, reason, LastSequenceNr);
        Become(Rebuilding);
        long expected = LastSequenceNr;
        PersistenceQuery.Get(Context.System).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier)
            .CurrentEventsByPersistenceId(PersistenceId, 0, expected)
            .RunWith(Sink.Seq<EventEnvelope>(), Context.Materializer())
            .WaitAsync(RebuildTimeout)
            .ContinueWith(t =>
            {
                var envelopes = t.Result;
                if (envelopes.Count != expected)
                    throw new InvalidDataException($"the journal holds {envelopes.Count} of records 1..{expected}");
                return (object)new Rebuilt(envelopes.Select(e => e.Event as IJobJournalEvent
                    ?? throw new InvalidDataException($"record {e.SequenceNr} is a {e.Event.GetType().Name}")).ToList());
            }, TaskContinuationOptions.ExecuteSynchronously)
            .PipeTo(Self, failure: e => new Status.Failure(e is AggregateException { InnerException: { } i } ? i : e));
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Error(reason, "job manager: recovery failed ({0}); no job is served until the journal and its newest snapshot can be read " +
            "(a snapshot of an unknown serializer can be deleted from the snapshot table: the journal keeps every record)", reason.Message);
        base.OnRecoveryFailure(reason, message);
    }

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private void OnRecovered()
    {
        if (_unreadable is not null) { RebuildFromJournal(); return; }
        _live = true;
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
        PersistAll(facts.Select(WithTag).ToList(), t => Applied((IJobJournalEvent)t.Payload));
        facts.Clear();
    }

    /// <summary>Each record is tagged with its job, so the read side (<see cref="JobEventFeed"/>) queries one job's records.</summary>
    private static Tagged WithTag(IJobJournalEvent e) => new(e, [JobEventFeed.TagOf(e.JobId)]);

    private void Submit(SubmitJob m)
    {
        if (SpecInput.Admit(m.SpecYaml) is { } refused)
        {
            Sender.Tell(new SubmitOutcome(null, [refused]));
            return;
        }
        var parsed = JobSpecs.Load(m.SpecYaml, _dataRoot, m.Quick, _checkpoints);
        if (!parsed.Ok)
        {
            Sender.Tell(new SubmitOutcome(null, parsed.Errors));
            return;
        }
        var spec = parsed.Spec!;
        string id = $"{spec.Name}-{Now:yyyyMMdd-HHmmss}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}";
        var replyTo = Sender;
        Persist(WithTag(new JobSubmitted(id, spec.Name, spec.Priority, parsed.Yaml!, m.Quick, Now)), t =>
        {
            Applied((IJobJournalEvent)t.Payload);
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

    /// <summary>Applies a persisted record (its events are published as they are applied), and saves a snapshot every so many.</summary>
    private void Applied(IJobJournalEvent e)
    {
        _book.Apply(e);
        PublishCounts();
        if (++_sinceSnapshot < _snapshotEvery) return;
        _sinceSnapshot = 0;
        SaveSnapshot(_book.Snapshot());   // in a persist handler: LastSequenceNr is this record's, and the book holds every record up to it
    }

    /// <summary>The book's sink: each event of a record applied live goes to the node's event stream (metrics, tests).</summary>
    private void Published(JobEntry job, JobEvent e)
    {
        if (_live) Context.System.EventStream.Publish(new JobActivity(job.JobId, job.Name, e));
    }

    private void PublishCounts()
    {
        var counts = _book.Counts();
        if (counts == _lastCounts) return;
        _lastCounts = counts;
        Context.System.EventStream.Publish(new JobQueueChanged(counts.Queued, counts.Running));
    }

    private sealed record LocalDone(string JobId, string Stage, IReadOnlyDictionary<string, double>? Metrics, Exception? Error);
    private sealed class Recovered { public static readonly Recovered Instance = new(); }
    private sealed record Rebuilt(IReadOnlyList<IJobJournalEvent> Records);
    private sealed class ScheduleNow { public static readonly ScheduleNow Instance = new(); }
}
