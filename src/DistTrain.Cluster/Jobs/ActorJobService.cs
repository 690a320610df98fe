using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Hosting;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Contracts.Specs;

namespace DistTrain.Cluster.Jobs;

/// <summary>Marker key for the job manager singleton's proxy in the actor registry.</summary>
public sealed class JobManagerProxyKey;

/// <summary>
/// <see cref="IJobService"/> over the job manager singleton (through its proxy, so it works from any coordinator
/// node and across a fail-over) and the coordinator's worker registry. Every call is bounded by a timeout.
/// </summary>
public sealed class ActorJobService(IActorRegistry registry, TimeSpan? timeout = null) : IJobService
{
    private static readonly TimeSpan PollWait = TimeSpan.FromSeconds(10);
    private const int MaxSilentPolls = 12;   // consecutive unanswered polls (about 3 minutes without a singleton) before a watch gives up
    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(30);

    private Task<IActorRef> Jobs(CancellationToken ct) => registry.GetAsync<JobManagerProxyKey>(ct);

    /// <remarks>A spec over the size limit or with forbidden characters is refused here, before it is sent: only then is
    /// the message's size on the wire bounded by the Akka frame size (<see cref="SpecLimits.MaxFrameBytes"/>).</remarks>
    public async Task<SubmitOutcome> SubmitAsync(string specYaml, bool quick, CancellationToken ct) =>
        SpecInput.Admit(specYaml) is { } refused
            ? new SubmitOutcome(null, [refused])
            : await (await Jobs(ct)).Ask<SubmitOutcome>(new SubmitJob(specYaml, quick), _timeout, ct);

    public async Task<JobView?> GetAsync(string jobId, CancellationToken ct) =>
        (await (await Jobs(ct)).Ask<JobLookup>(new GetJob(jobId), _timeout, ct)).Job;

    public async Task<IReadOnlyList<JobView>> ListAsync(JobState? state, string? name, int limit, CancellationToken ct) =>
        (await (await Jobs(ct)).Ask<JobList>(new ListJobs(state, name, limit), _timeout, ct)).Jobs;

    public async Task<(CancelOutcome Outcome, JobView? Job)> CancelAsync(string jobId, CancellationToken ct)
    {
        var reply = await (await Jobs(ct)).Ask<CancelReply>(new CancelJob(jobId), _timeout, ct);
        return (reply.Outcome, reply.Job);
    }

    public async IAsyncEnumerable<JobEvent> WatchAsync(string jobId, long afterSequence, [EnumeratorCancellation] CancellationToken ct)
    {
        var jobs = await Jobs(ct);
        long after = afterSequence;
        int silent = 0;
        while (true)
        {
            JobEventsPage page;
            try
            {
                page = await jobs.Ask<JobEventsPage>(new GetJobEvents(jobId, after, 512, PollWait), PollWait + TimeSpan.FromSeconds(5), ct);
                silent = 0;
            }
            catch (AskTimeoutException) when (++silent < MaxSilentPolls)
            {
                continue;   // the singleton is moving to another node; its proxy buffers until it is back
            }
            if (!page.Found) throw new KeyNotFoundException($"no job '{jobId}'");
            foreach (var e in page.Events)
            {
                yield return e;
                after = e.Sequence;
                if (e.Body is JobFinished) yield break;
            }
            if (page.Ended) yield break;
        }
    }

    public async Task<IReadOnlyList<WorkerView>> WorkersAsync(CancellationToken ct)
    {
        var coordinator = await registry.GetAsync<CoordinatorProxyKey>(ct);
        var snapshot = await coordinator.Ask<WorkersSnapshot>(GetWorkers.Instance, _timeout, ct);
        return snapshot.Workers.Select(w => new WorkerView(w.WorkerId, w.Node, w.Device, w.JobId, w.Stage, w.Rank, "up")).ToList();
    }
}
