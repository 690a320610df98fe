using DistTrain.Contracts.Specs;

namespace DistTrain.Cluster.Jobs;

/// <summary>One stage of a job in the book.</summary>
public sealed class StageEntry(StageSpec spec)
{
    public StageSpec Spec { get; } = spec;
    public string Name => Spec.Name;
    public JobState State { get; internal set; } = JobState.Queued;
    public int Step { get; internal set; }
    /// <summary>Optimiser steps of a training stage; shards of a label stage once it reports progress.</summary>
    public int TotalSteps { get; internal set; } = spec.Kind.Trains() ? spec.Train.Steps : 0;
    public int Attempts { get; internal set; }
    /// <summary>Restarts used of the stage's budget (<c>max_restarts</c>), over every attempt; kept in the journal.</summary>
    public int Restarts { get; internal set; }
    public string? Error { get; internal set; }
    public IReadOnlyDictionary<string, double> Metrics { get; internal set; } = new Dictionary<string, double>();
    /// <summary>The last checkpoint recorded for the stage; a re-dispatched stage resumes from it.</summary>
    public (string Path, int Step)? Checkpoint { get; internal set; }

    public StageView View() => new(Name, Spec.Kind.ToString().ToLowerInvariant(), State, Step, TotalSteps, Metrics, Error);
}

/// <summary>
/// One job in the book: its spec, state and stages. Its events are numbered here but not kept: the book hands each to
/// its sink, and watchers replay them from the journal (<see cref="JobEventFeed"/>), so a finished job costs the book
/// its views only, however many progress records it had.
/// </summary>
public sealed class JobEntry
{
    internal JobEntry(JobSubmitted s, JobSpec spec, long order)
    {
        (JobId, Name, Priority, SpecYaml, Quick, Submitted, Spec, Order) = (s.JobId, s.Name, s.Priority, s.SpecYaml, s.Quick, s.At, spec, order);
        Stages = StageGraph.TopologicalOrder(spec).Select(st => new StageEntry(st)).ToList();
    }

    public string JobId { get; }
    public string Name { get; }
    public int Priority { get; }
    public string SpecYaml { get; }
    public bool Quick { get; }
    public DateTimeOffset Submitted { get; }
    public JobSpec Spec { get; }
    /// <summary>Submission order: ties of priority run first-come first-served.</summary>
    public long Order { get; }
    public JobState State { get; internal set; } = JobState.Queued;
    public string? Error { get; internal set; }
    public bool CancelRequested { get; internal set; }
    /// <summary>Stages in dependency order.</summary>
    public IReadOnlyList<StageEntry> Stages { get; }
    /// <summary>Events so far: the number of the last one (they are numbered from 1 without gaps).</summary>
    public long EventCount { get; internal set; }

    public StageEntry Stage(string name) => Stages.FirstOrDefault(s => s.Name == name)
        ?? throw new KeyNotFoundException($"job {JobId} has no stage '{name}'");

    /// <summary>The job is winding down (cancelled, or a stage failed): nothing new starts.</summary>
    public bool Stopping => CancelRequested || Stages.Any(s => s.State == JobState.Failed);

    public JobView View() => new(JobId, Name, Priority, State, Submitted, Stages.Select(s => s.View()).ToList(), Error);

    internal JobEvent Next(DateTimeOffset at, JobEventBody body) => new(++EventCount, at, body);
}

/// <summary>
/// Every job the coordinator knows, as pure state: journal records go in through <see cref="Apply"/> (live and on
/// recovery alike), and the scheduling questions are answered from it. No actors, clocks or I/O, so the transition
/// table below is unit-tested directly.
///
/// Job states:                               Stage states:
///   Queued  → Running    first stage starts    Queued  → Running    its group formed / inference began
///   Queued  → Cancelled  cancelled             Queued  → Cancelled  job cancelled, or an upstream stage failed
///   Running → Succeeded  every stage did       Running → Succeeded | Failed | Cancelled (stopped at a step boundary)
///   Running → Failed     a stage failed        Running → Queued     the coordinator restarted; resumes from its checkpoint
///   Running → Cancelled  cancelled
/// Succeeded, Failed and Cancelled are final for both.
/// </summary>
/// <param name="emitted">Receives every event a record produces, numbered, as it is applied (the actor publishes them;
/// the read side streams them to a watcher; tests collect them).</param>
public sealed class JobBook(Action<JobEntry, JobEvent>? emitted = null)
{
    private readonly Dictionary<string, JobEntry> _jobs = new();
    private long _order;

    public IEnumerable<JobEntry> Jobs => _jobs.Values;

    public JobEntry? Find(string jobId) => _jobs.GetValueOrDefault(jobId);

    /// <summary>Applies one journal record. Records arrive only after validation, so an impossible one is a bug and throws.</summary>
    public JobEntry Apply(IJobJournalEvent e)
    {
        if (e is JobSubmitted submitted)
        {
            var parsed = JobSpecs.Load(submitted.SpecYaml, quick: submitted.Quick);
            if (!parsed.Ok) throw new InvalidOperationException($"journal holds an invalid spec for {submitted.JobId}: {string.Join("; ", parsed.Errors)}");
            var entry = new JobEntry(submitted, parsed.Spec!, _order++);
            _jobs.Add(submitted.JobId, entry);
            foreach (var s in entry.Stages) Emit(entry, e.At, new StageChanged(s.View()));
            return entry;
        }
        var job = _jobs.GetValueOrDefault(e.JobId) ?? throw new InvalidOperationException($"journal record for unknown job {e.JobId}: {e.GetType().Name}");
        switch (e)
        {
            case StageDispatched d:
                job.Stage(d.Stage).Attempts = d.Attempt;
                break;
            case StageStarted st:
            {
                var stage = job.Stage(st.Stage);
                Move(stage, JobState.Running, JobState.Queued);
                if (job.State == JobState.Queued) job.State = JobState.Running;
                Emit(job, e.At, new StageChanged(stage.View()));
                break;
            }
            case StageProgressed p:
            {
                var stage = job.Stage(p.Stage);
                stage.Step = Math.Max(stage.Step, p.Step + 1);
                stage.TotalSteps = p.TotalSteps;
                Emit(job, e.At, new StageProgress(p.Stage, p.Rank, p.Step, p.TotalSteps, p.Loss, p.TokensPerSecond));
                break;
            }
            case StageCheckpointed c:
                job.Stage(c.Stage).Checkpoint = (c.Path, c.Step);
                job.Stage(c.Stage).Step = Math.Max(job.Stage(c.Stage).Step, c.Step);
                Emit(job, e.At, new StageCheckpointSaved(c.Stage, c.Step, c.Path));
                break;
            case StageEnded end:
            {
                var stage = job.Stage(end.Stage);
                if (end.State == JobState.Cancelled) Move(stage, JobState.Cancelled, JobState.Queued, JobState.Running);
                else Move(stage, end.State, JobState.Running);
                stage.Error = end.Error;
                stage.Metrics = end.Metrics;
                if (end.State == JobState.Succeeded) stage.Step = stage.TotalSteps;
                Emit(job, e.At, new StageChanged(stage.View()));
                if (end.Metrics.Count > 0) Emit(job, e.At, new StageEvaluated(end.Stage, stage.Step, end.Metrics));
                if (end.Error is not null) Emit(job, e.At, new JobError($"stage {end.Stage}: {end.Error}"));
                break;
            }
            case StageRequeued r:
            {
                var stage = job.Stage(r.Stage);
                Move(stage, JobState.Queued, JobState.Running);
                Emit(job, e.At, new StageChanged(stage.View()));
                Emit(job, e.At, new JobError($"stage {r.Stage}: {r.Reason}"));
                break;
            }
            case JobCancelRequested:
                job.CancelRequested = true;
                break;
            case JobNoted n:
                Emit(job, e.At, new JobError(n.Message));
                break;
            case StageRestarted r:
                job.Stage(r.Stage).Restarts = Math.Max(job.Stage(r.Stage).Restarts, r.Restarts);
                Emit(job, e.At, new JobError(r.Message));
                break;
            case JobEnded end:
                if (job.State.IsFinal()) throw new InvalidOperationException($"job {job.JobId} ended twice");
                if (!end.State.IsFinal()) throw new InvalidOperationException($"job {job.JobId} cannot end as {end.State}");
                job.State = end.State;
                job.Error = end.Error;
                Emit(job, e.At, new JobFinished(job.View()));
                break;
            default:
                throw new InvalidOperationException($"unknown journal record {e.GetType().Name}");
        }
        return job;
    }

    private void Emit(JobEntry job, DateTimeOffset at, JobEventBody body)
    {
        var ev = job.Next(at, body);
        emitted?.Invoke(job, ev);
    }

    private static void Move(StageEntry stage, JobState to, params JobState[] from)
    {
        if (!from.Contains(stage.State))
            throw new InvalidOperationException($"stage {stage.Name} cannot go from {stage.State} to {to}");
        stage.State = to;
    }

    /// <summary>Jobs that are not final, in the order the scheduler serves them: priority, then submission.</summary>
    public IEnumerable<JobEntry> Live() => _jobs.Values.Where(j => !j.State.IsFinal())
        .OrderByDescending(j => j.Priority).ThenBy(j => j.Order);

    /// <summary>Queued stages whose inputs exist (every stage they need succeeded), of jobs not winding down.</summary>
    public static IEnumerable<StageEntry> Ready(JobEntry job) => job.Stopping ? [] :
        job.Stages.Where(s => s.State == JobState.Queued && s.Spec.Dependencies().All(n => job.Stage(n).State == JobState.Succeeded));

    /// <summary>
    /// How a job settles when nothing of it is in flight: a stopping job cancels its queued stages and ends (failed
    /// if a stage failed, else cancelled); a job whose stages all succeeded ends succeeded; otherwise it goes on.
    /// </summary>
    /// <returns>The stages to cancel and the final state, or null while the job goes on (or something still runs).</returns>
    public static (IReadOnlyList<StageEntry> CancelQueued, JobState State, string? Error)? Settlement(JobEntry job, bool anythingInFlight)
    {
        if (job.State.IsFinal() || anythingInFlight || job.Stages.Any(s => s.State == JobState.Running)) return null;
        if (job.Stopping)
        {
            var queued = job.Stages.Where(s => s.State == JobState.Queued).ToList();
            return job.Stages.FirstOrDefault(s => s.State == JobState.Failed) is { } failed
                ? (queued, JobState.Failed, $"stage {failed.Name} failed: {failed.Error}")
                : (queued, JobState.Cancelled, "cancelled by request");
        }
        return job.Stages.All(s => s.State == JobState.Succeeded) ? ([], JobState.Succeeded, null) : null;
    }

    /// <summary>The whole book as data, for a journal snapshot: recovery restores it and replays only the records after it.</summary>
    public JobBookSnapshot Snapshot() => new(JobBookSnapshot.CurrentFormat, _order, _jobs.Values.OrderBy(j => j.Order).Select(j =>
        new JobSnapshot(new JobSubmitted(j.JobId, j.Name, j.Priority, j.SpecYaml, j.Quick, j.Submitted), j.Order, j.State, j.Error,
            j.CancelRequested, j.EventCount, j.Stages.Select(s => new StageSnapshot(s.Name, s.State, s.Step, s.TotalSteps, s.Attempts,
                s.Restarts, s.Error, s.Metrics, s.Checkpoint?.Path, s.Checkpoint?.Step ?? 0)).ToList())).ToList());

    /// <summary>
    /// The book a snapshot describes. A snapshot that does not fit this code (another format, a spec that no longer
    /// parses, stages that differ from the spec's) is refused with <see cref="InvalidDataException"/>, never half-read.
    /// </summary>
    public static JobBook Restore(JobBookSnapshot snapshot, Action<JobEntry, JobEvent>? emitted = null)
    {
        if (snapshot.Format != JobBookSnapshot.CurrentFormat)
            throw new InvalidDataException($"job book snapshot format {snapshot.Format}; this build reads format {JobBookSnapshot.CurrentFormat}");
        var book = new JobBook(emitted) { _order = snapshot.NextOrder };
        foreach (var j in snapshot.Jobs)
        {
            var parsed = JobSpecs.Load(j.Submitted.SpecYaml, quick: j.Submitted.Quick);
            if (!parsed.Ok) throw new InvalidDataException($"snapshot holds an invalid spec for {j.Submitted.JobId}: {string.Join("; ", parsed.Errors)}");
            var entry = new JobEntry(j.Submitted, parsed.Spec!, j.Order) { State = j.State, Error = j.Error, CancelRequested = j.CancelRequested, EventCount = j.EventCount };
            if (!entry.Stages.Select(s => s.Name).SequenceEqual(j.Stages.Select(s => s.Name)))
                throw new InvalidDataException($"snapshot of job {j.Submitted.JobId} has stages [{string.Join(", ", j.Stages.Select(s => s.Name))}], its spec [{string.Join(", ", entry.Stages.Select(s => s.Name))}]");
            foreach (var (stage, s) in entry.Stages.Zip(j.Stages))
            {
                (stage.State, stage.Step, stage.TotalSteps, stage.Attempts, stage.Restarts, stage.Error) = (s.State, s.Step, s.TotalSteps, s.Attempts, s.Restarts, s.Error);
                stage.Metrics = new Dictionary<string, double>(s.Metrics);
                stage.Checkpoint = s.CheckpointPath is { } path ? (path, s.CheckpointStep) : null;
            }
            if (!book._jobs.TryAdd(entry.JobId, entry)) throw new InvalidDataException($"snapshot holds job {entry.JobId} twice");
        }
        return book;
    }

    /// <summary>Counts for the queue gauge: jobs waiting for their first stage, and jobs running.</summary>
    public (int Queued, int Running) Counts() =>
        (_jobs.Values.Count(j => j.State == JobState.Queued), _jobs.Values.Count(j => j.State == JobState.Running));
}
