using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Specs;

namespace DistTrain.Api.Tests.Support;

/// <summary>
/// TEMPORARY TEST DOUBLE, to be deleted when the coordinator's durable job manager (src/DistTrain.Cluster/Jobs) lands
/// on main and AddDistTrainNode registers the real IJobService: then <see cref="ApiNode"/> stops registering this.
/// Validates with the same JobSpecs.Load the real service uses, keeps jobs in memory, never runs them.
/// </summary>
public sealed class InMemoryJobService : IJobService
{
    private sealed class Job(JobView view)
    {
        public JobView View = view;
        public readonly List<JobEvent> Events = new();
        public TaskCompletionSource Changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly ConcurrentDictionary<string, Job> _jobs = new();
    private int _next;

    public Task<SubmitOutcome> SubmitAsync(string specYaml, bool quick, CancellationToken ct)
    {
        var result = JobSpecs.Load(specYaml, quick: quick);
        if (!result.Ok) return Task.FromResult(new SubmitOutcome(null, result.Errors.Select(e => e.ToString()).ToList()));
        var spec = result.Spec!;
        string id = $"{spec.Name}-{Interlocked.Increment(ref _next):D4}";
        var stages = spec.Stages.Select(s => new StageView(s.Name, SpecNames.Of(s.Kind), JobState.Queued, 0, s.Train.Steps, new Dictionary<string, double>())).ToList();
        _jobs[id] = new Job(new JobView(id, spec.Name, spec.Priority, JobState.Queued, DateTimeOffset.UtcNow, stages, null));
        return Task.FromResult(new SubmitOutcome(id, []));
    }

    public Task<JobView?> GetAsync(string jobId, CancellationToken ct) => Task.FromResult(_jobs.TryGetValue(jobId, out var j) ? j.View : null);

    public Task<IReadOnlyList<JobView>> ListAsync(JobState? state, string? name, int limit, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<JobView>>(_jobs.Values.Select(j => j.View)
            .Where(v => (state is null || v.State == state) && (name is null || v.Name == name))
            .OrderByDescending(v => v.Submitted).ThenByDescending(v => v.JobId).Take(limit == 0 ? 100 : limit).ToList());

    public Task<(CancelOutcome Outcome, JobView? Job)> CancelAsync(string jobId, CancellationToken ct)
    {
        if (!_jobs.TryGetValue(jobId, out var job)) return Task.FromResult<(CancelOutcome, JobView?)>((CancelOutcome.NotFound, null));
        lock (job)
        {
            if (job.View.State.IsFinal()) return Task.FromResult<(CancelOutcome, JobView?)>((CancelOutcome.AlreadyEnded, job.View));
            var stages = job.View.Stages.Select(s => s with { State = JobState.Cancelled }).ToList();
            job.View = job.View with { State = JobState.Cancelled, Stages = stages };
            foreach (var s in stages) Append(job, new StageChanged(s));
            Append(job, new JobFinished(job.View));
            return Task.FromResult<(CancelOutcome, JobView?)>((CancelOutcome.Cancelling, job.View));
        }
    }

    public async IAsyncEnumerable<JobEvent> WatchAsync(string jobId, long afterSequence, [EnumeratorCancellation] CancellationToken ct)
    {
        if (!_jobs.TryGetValue(jobId, out var job)) throw new KeyNotFoundException(jobId);
        long after = afterSequence;
        while (true)
        {
            List<JobEvent> next;
            Task changed;
            lock (job)
            {
                next = job.Events.Where(e => e.Sequence > after).ToList();
                changed = job.Changed.Task;
            }
            foreach (var e in next)
            {
                yield return e;
                after = e.Sequence;
                if (e.Body is JobFinished) yield break;
            }
            if (next.Count == 0) await changed.WaitAsync(ct);
        }
    }

    public Task<IReadOnlyList<WorkerView>> WorkersAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<WorkerView>>([]);

    private static void Append(Job job, JobEventBody body)
    {
        job.Events.Add(new JobEvent(job.Events.Count + 1, DateTimeOffset.UtcNow, body));
        var signal = job.Changed;
        job.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        signal.TrySetResult();
    }
}
