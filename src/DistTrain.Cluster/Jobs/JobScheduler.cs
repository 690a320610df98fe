using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;
using DistTrain.Execution;

namespace DistTrain.Cluster.Jobs;

/// <summary>What the job manager does, decided by <see cref="JobScheduler"/> and carried out by <see cref="JobManagerActor"/>.</summary>
public abstract record SchedulerCommand;

/// <summary>Persist a record, then apply it to the book (and publish it to watchers).</summary>
public sealed record RecordFact(IJobJournalEvent Fact) : SchedulerCommand;

/// <summary>Ask the coordinator to run a training stage, or a label stage's shards.</summary>
public sealed record SendToCoordinator(ICoordinatorRequest Request) : SchedulerCommand;

/// <summary>Run a stage's work on the coordinator node, off the actor: the merge of a label stage's shards.</summary>
public sealed record RunLocally(string JobId, string Stage, LocalWork Work) : SchedulerCommand;

/// <summary>Cancel a stage's local work.</summary>
public sealed record CancelLocal(string JobId, string Stage) : SchedulerCommand;

/// <summary>Rewrite the job's report.json once the records before this command are persisted.</summary>
public sealed record WriteReport(string JobId) : SchedulerCommand;

public enum LocalWork { MergeLabels }

/// <summary>
/// The job manager's decisions as pure logic: the book of journaled facts and what is in flight go in, commands come
/// out (<see cref="RecordFact"/>, <see cref="SendToCoordinator"/>, …). Like <see cref="DataParallelRun"/>, it never
/// waits, sends or persists, so every decision is unit-tested without an ActorSystem (JobSchedulerTests).
/// </summary>
/// <remarks>
/// The actor persists records asynchronously, so one call decides on the book as it was when the call started; the
/// records it returns are applied later, before the next call. What is in flight is the scheduler's own state, updated
/// at once, which is what keeps a stage from being dispatched twice.
/// </remarks>
/// <param name="book">The journaled facts; the actor applies each record to it once persisted.</param>
/// <param name="stageMetrics">Reads a finished training stage's metrics.json (job id, stage).</param>
public sealed class JobScheduler(JobBook book, Func<string, string, IReadOnlyDictionary<string, double>> stageMetrics)
{
    /// <summary>Training progress is recorded at most this often per rank; the last step always.</summary>
    public static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(1);

    /// <summary>Each dispatch numbers its groups apart, so workers' messages from an earlier attempt never match.</summary>
    public const int GenerationsPerAttempt = 1000;

    private readonly Dictionary<(string Job, string Stage), InFlight> _inFlight = new();
    private readonly Dictionary<(string Job, string Stage, int Rank), DateTimeOffset> _lastProgress = new();

    public JobBook Book => book;

    public bool IsInFlight(string jobId, string stage) => _inFlight.ContainsKey((jobId, stage));

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

    /// <summary>After recovery: runs die with the coordinator, so a stage that was running is queued again, from its checkpoint.</summary>
    public IReadOnlyList<SchedulerCommand> Recovered(DateTimeOffset now)
    {
        var commands = new List<SchedulerCommand>();
        foreach (var job in book.Live())
            foreach (var stage in job.Stages.Where(s => s.State == JobState.Running))
            {
                string from = stage.Checkpoint is { } c ? $"its checkpoint of step {c.Step}" : "the start (no checkpoint was recorded)";
                commands.Add(new RecordFact(new StageRequeued(job.JobId, stage.Name, $"the coordinator restarted; resuming from {from}", now)));
            }
        return commands;
    }

    /// <summary>Winds stopping jobs down, ends finished ones, and dispatches every ready stage of every live job.</summary>
    public IReadOnlyList<SchedulerCommand> Schedule(DateTimeOffset now)
    {
        var commands = new List<SchedulerCommand>();
        foreach (var job in book.Live())
        {
            Settle(job, now, commands);
            if (job.State.IsFinal()) continue;
            foreach (var stage in JobBook.Ready(job))
                if (!_inFlight.ContainsKey((job.JobId, stage.Name))) Dispatch(job, stage, now, commands);
        }
        return commands;
    }

    /// <summary>A cancellation request; the next <see cref="Schedule"/> stops what runs and cancels what waits.</summary>
    public IReadOnlyList<SchedulerCommand> Cancel(JobEntry job, DateTimeOffset now) =>
        job.CancelRequested ? [] : [new RecordFact(new JobCancelRequested(job.JobId, now))];

    public IReadOnlyList<SchedulerCommand> OnGenerationStarted(GenerationStarted g, DateTimeOffset now)
    {
        if (Live(g.JobId) is not { } job) return [];
        var stage = job.Stage(g.Stage);
        if (stage.State == JobState.Queued) return [new RecordFact(new StageStarted(g.JobId, g.Stage, g.Workers, now))];
        string message = $"stage {g.Stage}: group re-formed with {g.Workers.Count} worker(s) (generation {g.Generation}, {g.RestartsUsed} restart(s) used)";
        return [new RecordFact(g.RestartsUsed > stage.Restarts ? new StageRestarted(g.JobId, g.Stage, g.RestartsUsed, message, now) : new JobNoted(g.JobId, message, now))];
    }

    /// <summary>A rank's step: recorded at most every <see cref="ProgressEvery"/> per rank, and always the stage's last.</summary>
    public IReadOnlyList<SchedulerCommand> OnStep(StepCompleted m, DateTimeOffset now)
    {
        if (Live(m.JobId) is not { } job) return [];
        var stage = job.Stage(m.Stage);
        var key = (m.JobId, m.Stage, m.Rank);
        bool last = m.Step + 1 >= stage.TotalSteps;
        if (!last && _lastProgress.TryGetValue(key, out var at) && now - at < ProgressEvery) return [];
        _lastProgress[key] = now;
        double tokensPerSecond = m.StepSeconds > 0 ? m.Targets / m.StepSeconds : 0;
        return [new RecordFact(new StageProgressed(m.JobId, m.Stage, m.Rank, m.Step, stage.TotalSteps, m.Loss, tokensPerSecond, now))];
    }

    public IReadOnlyList<SchedulerCommand> OnCheckpoint(CheckpointSaved m, DateTimeOffset now) =>
        [new RecordFact(new StageCheckpointed(m.JobId, m.Stage, m.Step, m.Path, now))];

    /// <summary>Progress of a label stage counts shards: this is shard number Step (0-based) to finish, of the stage's fixed count.</summary>
    public IReadOnlyList<SchedulerCommand> OnShardDone(ShardDone m, DateTimeOffset now)
    {
        if (Live(m.JobId) is not { } job) return [];
        var stage = job.Stage(m.Stage);
        return [new RecordFact(new StageProgressed(m.JobId, m.Stage, -1, stage.Step, LabelShards.Count(stage.Spec), 0, m.Seconds > 0 ? m.Examples / m.Seconds : 0, now))];
    }

    public IReadOnlyList<SchedulerCommand> OnShardFailed(ShardFailed m, DateTimeOffset now) =>
        [new RecordFact(new JobNoted(m.JobId, $"stage {m.Stage}: shard {m.Shard} failed on a worker ({m.Reason}); it will be retried", now))];

    /// <summary>The coordinator ended a training or label stage.</summary>
    public IReadOnlyList<SchedulerCommand> OnStageFinished(StageFinished f, DateTimeOffset now)
    {
        var job = Live(f.JobId);
        if (job is not null && f.Succeeded && job.Stage(f.Stage).Spec.Kind == StageKind.Label && !job.CancelRequested)
        {
            // Every shard is on storage: join them into the stage's one checksummed label file, off the actor.
            _inFlight[(f.JobId, f.Stage)] = new InFlight(Local: true);
            return [new RunLocally(f.JobId, f.Stage, LocalWork.MergeLabels)];
        }
        _inFlight.Remove((f.JobId, f.Stage));
        if (job is null) return [];
        if (f.Succeeded)
            return EndSucceeded(job, f.Stage, () => job.Stage(f.Stage).Spec.Kind.Trains()
                ? new Dictionary<string, double>(stageMetrics(f.JobId, f.Stage)) { ["restarts"] = f.Restarts }
                : stageMetrics(f.JobId, f.Stage), now);
        return [EndStage(f.JobId, f.Stage, f.Stopped ? JobState.Cancelled : JobState.Failed, f.Summary, now)];
    }

    /// <summary>A stage's local work (evaluate, label merge) ended: with metrics, or with an error.</summary>
    public IReadOnlyList<SchedulerCommand> OnLocalDone(string jobId, string stage, IReadOnlyDictionary<string, double>? metrics, Exception? error, DateTimeOffset now)
    {
        _inFlight.Remove((jobId, stage));
        if (Live(jobId) is not { } job) return [];
        if (metrics is not null) return EndSucceeded(job, stage, () => metrics, now);
        if (error is OperationCanceledException && job.CancelRequested) return [EndStage(jobId, stage, JobState.Cancelled, "the job was cancelled", now)];
        return [EndStage(jobId, stage, JobState.Failed, error?.Message ?? "unknown error", now)];
    }

    private JobEntry? Live(string jobId) => book.Find(jobId) is { } job && !job.State.IsFinal() ? job : null;

    private void Settle(JobEntry job, DateTimeOffset now, List<SchedulerCommand> commands)
    {
        string why = job.CancelRequested ? "the job was cancelled" : "an upstream stage failed";
        if (job.Stopping)
            foreach (var (key, run) in _inFlight.Where(kv => kv.Key.Job == job.JobId && !kv.Value.StopSent))
            {
                run.StopSent = true;
                commands.Add(run.Local ? new CancelLocal(job.JobId, key.Stage) : new SendToCoordinator(new StopStage(job.JobId, key.Stage, why)));
            }
        if (JobBook.Settlement(job, _inFlight.Keys.Any(k => k.Job == job.JobId)) is not { } end) return;
        foreach (var stage in end.CancelQueued) commands.Add(EndStage(job.JobId, stage.Name, JobState.Cancelled, why, now));
        commands.Add(new RecordFact(new JobEnded(job.JobId, end.State, end.Error, now)));
    }

    private void Dispatch(JobEntry job, StageEntry stage, DateTimeOffset now, List<SchedulerCommand> commands)
    {
        int attempt = stage.Attempts + 1;
        commands.Add(new RecordFact(new StageDispatched(job.JobId, stage.Name, attempt, now)));
        if (stage.Spec.Kind.Trains())
        {
            _inFlight[(job.JobId, stage.Name)] = new InFlight(Local: false);
            commands.Add(new SendToCoordinator(RunRequest(job, stage, attempt)));
        }
        else
        {
            // Inference on the workers: a label stage's shards over every free worker (shards already on storage are
            // reused); an evaluate stage as one shard on one worker.
            _inFlight[(job.JobId, stage.Name)] = new InFlight(Local: false);
            int shards = LabelShards.Count(stage.Spec);
            commands.Add(new SendToCoordinator(new RunInference(job.JobId, stage.Name, job.SpecYaml, job.Quick, shards,
                stage.Spec.Kind == StageKind.Evaluate ? 1 : SpecLimits.MaxWorkers, job.Priority)));
        }
    }

    private static IReadOnlyList<SchedulerCommand> EndSucceeded(JobEntry job, string stage, Func<IReadOnlyDictionary<string, double>> metrics, DateTimeOffset now)
    {
        IReadOnlyDictionary<string, double> m;
        try { m = metrics(); }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or UnauthorizedAccessException)
        {
            return [EndStage(job.JobId, stage, JobState.Failed, $"its metrics could not be read: {e.Message}", now)];
        }
        return [new RecordFact(new StageEnded(job.JobId, stage, JobState.Succeeded, null, m, now)), new WriteReport(job.JobId)];
    }

    /// <summary>A stage ended without metrics (failed or cancelled), for <paramref name="why"/>.</summary>
    private static RecordFact EndStage(string jobId, string stage, JobState state, string? why, DateTimeOffset now) =>
        new(new StageEnded(jobId, stage, state, why, new Dictionary<string, double>(), now));

    private sealed class InFlight(bool Local)
    {
        public bool Local { get; } = Local;
        public bool StopSent { get; set; }
    }
}
