using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Worker;
using DistTrain.Contracts.Protocols;
using DistTrain.Execution;
using Prometheus;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// Turns the events a node sees into metric values: its own ranks' reports on a worker node; cross-rank, group, job,
/// queue and membership events on a coordinator node. Pure state logic on one thread (the metrics actor's), so tests
/// drive it without an actor system. Series of a rank that moved to another group, of a finished stage's stragglers and
/// of old finished jobs are removed, so the exported label sets stay bounded.
/// </summary>
public sealed class MetricsRecorder
{
    private static readonly string[] FinalStates = Enum.GetValues<JobState>().Where(s => s.IsFinal()).Select(Name).ToArray();

    private readonly DistTrainMetrics _metrics;
    private readonly int _finishedJobsKept;
    private readonly Dictionary<string, string[]> _rankSeries = new();   // worker id → its current rank labels
    private readonly StragglerTracker _stragglers = new();
    private readonly Dictionary<(string Job, string Stage), int> _restarts = new();
    private readonly Dictionary<string, (string Name, JobState State)> _jobs = new();
    private readonly Queue<string> _finishedJobs = new();
    private readonly ClusterMembership _membership = new();

    /// <param name="finishedJobsKept">Finished jobs whose series stay exported; older ones are dropped (Prometheus keeps their history).</param>
    public MetricsRecorder(DistTrainMetrics metrics, int finishedJobsKept = 20)
    {
        (_metrics, _finishedJobsKept) = (metrics, finishedJobsKept);
        if (metrics.Cluster is { } c)
        {
            // Published at zero, so increase() sees the first event and every panel has a series from the start.
            foreach (var s in FinalStates) c.JobsFinished.WithLabels(s);
            PublishMembership();
        }
    }

    /// <summary>The node label of a worker id (<c>host:port/device</c> → <c>host:port</c>).</summary>
    public static string NodeOf(string workerId) => workerId.LastIndexOf('/') is var i and > 0 ? workerId[..i] : workerId;

    // ---- worker node: this node's ranks ----

    public void Record(WorkerReport report)
    {
        if (_metrics.Ranks is not { } r) return;
        switch (report.Message)
        {
            case StepCompleted s:
            {
                var labels = RankSeries(report.WorkerId, s.JobId, s.Stage, s.Rank);
                r.StepSeconds.WithLabels(labels).Observe(s.StepSeconds);
                r.Steps.WithLabels(labels).Inc();
                r.TokensPerSecond.WithLabels(labels).Set(s.StepSeconds > 0 ? s.Targets / s.StepSeconds : 0);
                r.Loss.WithLabels(labels).Set(s.Loss);
                r.GradientNorm.WithLabels(labels).Set(s.GradNorm);
                r.LearningRate.WithLabels(labels).Set(s.LearningRate);
                r.DataWaitSeconds.WithLabels(labels).Observe(s.DataSeconds);
                r.AllReduceSeconds.WithLabels(labels).Observe(s.ReduceSeconds);
                r.AllReduceHiddenSeconds.WithLabels(labels).Observe(Math.Max(0, s.CommSeconds - s.ReduceSeconds));
                r.AllReduceBytes.WithLabels(labels).Inc(s.ReduceBytes);
                r.NonFiniteSteps.WithLabels(labels);   // published at zero
                break;
            }
            case CheckpointSaved c:
                r.CheckpointSeconds.WithLabels(RankSeries(report.WorkerId, c.JobId, c.Stage, c.Rank)).Observe(c.Seconds);
                break;
            case SessionFailed f when IsNonFinite(report.Error):
            {
                var labels = RankSeries(report.WorkerId, f.JobId, f.Stage, f.Rank);
                r.NonFiniteSteps.WithLabels(labels).Inc();
                r.Loss.WithLabels(labels).Set(double.NaN);
                break;
            }
        }
    }

    private static bool IsNonFinite(Exception? e) => e is NonFiniteLossException || e?.InnerException is NonFiniteLossException;

    /// <summary>The rank labels of a worker's report; a worker that moved to another group or rank drops its old series.</summary>
    private string[] RankSeries(string workerId, string jobId, string stage, int rank)
    {
        string[] labels = [jobId, stage, rank.ToString(), NodeOf(workerId)];
        if (_rankSeries.TryGetValue(workerId, out var old) && !old.SequenceEqual(labels))
            foreach (var c in _metrics.Ranks!.All) RemoveWhere(c, l => l.SequenceEqual(old));
        _rankSeries[workerId] = labels;
        return labels;
    }

    // ---- coordinator node: across ranks, groups, jobs ----

    /// <summary>A rank's step as the coordinator received it (one per rank per step).</summary>
    public void Record(StepCompleted s)
    {
        if (_metrics.Cluster is not { } c) return;
        if (s.Rank == 0) c.Tokens.WithLabels(s.JobId, s.Stage).Inc(s.Targets);
        if (_stragglers.OnStep(s) is not { } gaps) return;
        c.BusyMedian.WithLabels(s.JobId, s.Stage).Set(gaps.MedianBusySeconds);
        foreach (var g in gaps.Gaps) c.StragglerGap.WithLabels(s.JobId, s.Stage, g.Rank.ToString(), g.Node).Set(g.GapSeconds);
    }

    public void Record(GenerationStarted g)
    {
        if (_metrics.Cluster is not { } c) return;
        _stragglers.OnGeneration(g.JobId, g.Stage, g.Generation, g.Workers.Select(NodeOf).ToList());
        RemoveWhere(c.StragglerGap, l => l[0] == g.JobId && l[1] == g.Stage);   // ranks were re-assigned
        c.WorldSize.WithLabels(g.JobId, g.Stage).Set(g.Workers.Count);
        c.Generation.WithLabels(g.JobId, g.Stage).Set(g.Generation);
        c.WorkerRestarts.WithLabels(g.JobId, g.Stage);   // published at zero
        CountRestarts(c, g.JobId, g.Stage, g.RestartsUsed);
    }

    /// <summary>
    /// Adds the restarts a run used since its last report. A stage dispatched again (after a coordinator restart) is a
    /// new run whose count starts from zero, so a count below the last one is that new run's own.
    /// </summary>
    private void CountRestarts(CoordinatorMetrics c, string jobId, string stage, int restartsUsed)
    {
        int last = _restarts.GetValueOrDefault((jobId, stage));
        int added = restartsUsed >= last ? restartsUsed - last : restartsUsed;
        if (added > 0) c.WorkerRestarts.WithLabels(jobId, stage).Inc(added);
        _restarts[(jobId, stage)] = restartsUsed;
    }

    public void Record(StageFinished f)
    {
        if (_metrics.Cluster is not { } c) return;
        _stragglers.OnStageFinished(f.JobId, f.Stage);
        // A finished stage has no stragglers; a gap left standing would keep the straggler alert firing.
        RemoveWhere(c.StragglerGap, l => l[0] == f.JobId && l[1] == f.Stage);
        RemoveWhere(c.BusyMedian, l => l[0] == f.JobId && l[1] == f.Stage);
        CountRestarts(c, f.JobId, f.Stage, f.Restarts);   // a failure on a spent budget forms no new group
        _restarts.Remove((f.JobId, f.Stage));
    }

    public void Record(WorkerLost _) => _metrics.Cluster?.WorkersLost.Inc();

    public void Record(JobQueueChanged q)
    {
        if (_metrics.Cluster is not { } c) return;
        c.QueueLength.Set(q.Queued);
        c.JobsRunning.Set(q.Running);
    }

    public void Record(JobActivity a)
    {
        if (_metrics.Cluster is not { } c) return;
        if (!_jobs.TryGetValue(a.JobId, out var job)) job = (a.JobName, JobState.Queued);
        if (job.State.IsFinal()) return;   // events after the end (none are expected) cannot revive a job
        switch (a.Event.Body)
        {
            case StageChanged sc:
                SetState(c.StageState, [a.JobId, sc.Stage.Name], sc.Stage.State);
                if (sc.Stage.TotalSteps > 0) c.StageProgress.WithLabels(a.JobId, sc.Stage.Name).Set(Math.Min(1, (double)sc.Stage.Step / sc.Stage.TotalSteps));
                if (sc.Stage.State == JobState.Running) job.State = JobState.Running;
                break;
            case StageProgress p when p.TotalSteps > 0:
                // Step is the index of the step just completed.
                c.StageProgress.WithLabels(a.JobId, p.Stage).Set(Math.Min(1, (p.Step + 1.0) / p.TotalSteps));
                job.State = JobState.Running;
                break;
            case JobFinished jf:
                foreach (var s in jf.Job.Stages) SetState(c.StageState, [a.JobId, s.Name], s.State);
                job.State = jf.Job.State;
                c.JobsFinished.WithLabels(Name(jf.Job.State)).Inc();
                _finishedJobs.Enqueue(a.JobId);
                break;
        }
        _jobs[a.JobId] = job;
        SetState(c.JobState, [a.JobId, job.Name], job.State);
        while (_finishedJobs.Count > _finishedJobsKept) Forget(_finishedJobs.Dequeue());
    }

    private void Forget(string jobId)
    {
        _jobs.Remove(jobId);
        foreach (var key in _restarts.Keys.Where(k => k.Job == jobId).ToList()) _restarts.Remove(key);
        foreach (var collector in _metrics.Cluster!.ByJob) RemoveWhere(collector, l => l[0] == jobId);
    }

    /// <summary>One series per state, 1 for the current state (the usual Prometheus encoding of an enum).</summary>
    private static void SetState(Gauge gauge, string[] key, JobState state)
    {
        foreach (var s in Enum.GetValues<JobState>()) gauge.WithLabels([.. key, Name(s)]).Set(s == state ? 1 : 0);
    }

    private static string Name(JobState s) => s.ToString().ToLowerInvariant();

    // ---- membership (every event re-publishes the counts) ----

    public void RecordMember(string address, IReadOnlyCollection<string> roles, string? status)
    {
        _membership.SetMember(address, roles, status);
        PublishMembership();
    }

    public void RecordReachability(string address, bool reachable)
    {
        _membership.SetReachable(address, reachable);
        PublishMembership();
    }

    public void ResetMembership()
    {
        _membership.Clear();
        PublishMembership();
    }

    private void PublishMembership()
    {
        if (_metrics.Cluster is not { } c) return;
        foreach (var role in Hosting.Roles.All)
        {
            foreach (var status in ClusterMembership.Statuses) c.Members.WithLabels(role, status).Set(_membership.Count(role, status));
            c.Unreachable.WithLabels(role).Set(_membership.UnreachableCount(role));
        }
    }

    private static void RemoveWhere(Collector collector, Func<string[], bool> match)
    {
        switch (collector)
        {
            case Gauge g: foreach (var l in g.GetAllLabelValues().Where(match).ToList()) g.RemoveLabelled(l); break;
            case Counter k: foreach (var l in k.GetAllLabelValues().Where(match).ToList()) k.RemoveLabelled(l); break;
            case Histogram h: foreach (var l in h.GetAllLabelValues().Where(match).ToList()) h.RemoveLabelled(l); break;
            default: throw new ArgumentException($"unsupported collector {collector.GetType().Name}");
        }
    }
}
