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
/// node and across a fail-over) and the coordinator's worker registry; watches are served by the read side
/// (<see cref="JobEventFeed"/>), from the journal. Every call is bounded by a timeout.
/// </summary>
public sealed class ActorJobService(IActorRegistry registry, JobEventFeed feed, TimeSpan? timeout = null) : IJobService
{
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

    /// <remarks>
    /// The job manager holds no watchers: the events come from the journal. Only a job the read journal has not seen
    /// yet (submitted a moment ago, or unknown) is looked up in the job manager, which knows every job it accepted.
    /// </remarks>
    public async IAsyncEnumerable<JobEvent> WatchAsync(string jobId, long afterSequence, [EnumeratorCancellation] CancellationToken ct)
    {
        if (!await feed.ContainsAsync(jobId, _timeout, ct) && await GetAsync(jobId, ct) is null)
            throw new KeyNotFoundException($"no job '{jobId}'");
        await foreach (var e in feed.WatchAsync(jobId, afterSequence, ct))
            yield return e;
    }

    public async Task<IReadOnlyList<WorkerView>> WorkersAsync(CancellationToken ct)
    {
        var coordinator = await registry.GetAsync<CoordinatorProxyKey>(ct);
        var snapshot = await coordinator.Ask<WorkersSnapshot>(GetWorkers.Instance, _timeout, ct);
        return snapshot.Workers.Select(w => new WorkerView(w.WorkerId, w.Node, w.Device, w.JobId, w.Stage, w.Rank, "up")).ToList();
    }
}
