using DistTrain.Contracts.Specs;
using DistTrain.Cluster.Jobs;
using Grpc.Core;
using V1 = DistTrain.Api.V1;

namespace DistTrain.Api.Services;

/// <summary>
/// The gRPC Jobs service: a thin adapter over the node's <see cref="IJobService"/> that maps its outcomes to status
/// codes (INVALID_ARGUMENT with field paths, NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE when the coordinator does not answer).
/// </summary>
public sealed class JobsService(IJobService jobs) : V1.Jobs.JobsBase
{
    /// <summary>Most jobs one listing returns.</summary>
    public const int MaxListLimit = 1000;

    public override async Task<V1.SubmitJobReply> SubmitJob(V1.SubmitJobRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.SpecYaml)) throw InvalidSpec([new SpecError("$", "the spec is empty")]);
        var outcome = await Call(() => jobs.SubmitAsync(request.SpecYaml, request.Quick, context.CancellationToken));
        if (!outcome.Accepted) throw InvalidSpec(outcome.Errors);
        return new V1.SubmitJobReply { JobId = outcome.JobId };
    }

    public override async Task<V1.JobReply> GetJob(V1.GetJobRequest request, ServerCallContext context)
    {
        RequireId(request.JobId);
        var job = await Call(() => jobs.GetAsync(request.JobId, context.CancellationToken));
        return job?.ToWire() ?? throw NotFound(request.JobId);
    }

    public override async Task<V1.ListJobsReply> ListJobs(V1.ListJobsRequest request, ServerCallContext context)
    {
        if (request.Limit < 0) throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "limit: must be >= 0"));
        JobState? state;
        try { state = JobMessages.FromWire(request.State); }
        catch (ArgumentOutOfRangeException e) { throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "state: " + e.Message)); }
        var list = await Call(() => jobs.ListAsync(state, request.Name is { Length: > 0 } n ? n : null,
            Math.Min(request.Limit, MaxListLimit), context.CancellationToken));
        var reply = new V1.ListJobsReply();
        reply.Jobs.AddRange(list.Select(j => j.ToWire()));
        return reply;
    }

    public override async Task<V1.JobReply> CancelJob(V1.CancelJobRequest request, ServerCallContext context)
    {
        RequireId(request.JobId);
        var (outcome, job) = await Call(() => jobs.CancelAsync(request.JobId, context.CancellationToken));
        return outcome switch
        {
            CancelOutcome.NotFound => throw NotFound(request.JobId),
            CancelOutcome.AlreadyEnded => throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition,
                $"job {request.JobId} already ended ({job?.State.ToString().ToLowerInvariant() ?? "final"})")),
            _ => job?.ToWire() ?? throw NotFound(request.JobId),
        };
    }

    public override async Task WatchJob(V1.WatchJobRequest request, IServerStreamWriter<V1.JobEvent> responseStream, ServerCallContext context)
    {
        RequireId(request.JobId);
        if (request.AfterSequence < 0) throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "after_sequence: must be >= 0"));
        try
        {
            await foreach (var e in jobs.WatchAsync(request.JobId, request.AfterSequence, context.CancellationToken))
                await responseStream.WriteAsync(e.ToWire(), context.CancellationToken);
        }
        catch (KeyNotFoundException) { throw NotFound(request.JobId); }
        catch (TimeoutException e) { throw Unavailable(e); }
        catch (Akka.Actor.AskTimeoutException e) { throw Unavailable(e); }
    }

    public override async Task<V1.ListWorkersReply> ListWorkers(V1.ListWorkersRequest request, ServerCallContext context)
    {
        var workers = await Call(() => jobs.WorkersAsync(context.CancellationToken));
        var reply = new V1.ListWorkersReply();
        reply.Workers.AddRange(workers.Where(w => request.JobId.Length == 0 || w.JobId == request.JobId).Select(w => w.ToWire()));
        return reply;
    }

    /// <summary>
    /// INVALID_ARGUMENT listing the spec's errors, one per line with its path, and each as a google.rpc.BadRequest
    /// field violation; as many as fit the trailer budget of <see cref="ErrorTrailers"/>, the rest counted.
    /// </summary>
    public static RpcException InvalidSpec(IReadOnlyList<SpecError> errors) => ErrorTrailers.InvalidArgument("invalid job spec:", errors);

    private static void RequireId(string id)
    {
        if (string.IsNullOrWhiteSpace(id)) throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "job_id: must not be empty"));
        if (id.Length > 200) throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "job_id: must be at most 200 characters"));
    }

    private static RpcException NotFound(string id) => new(new Grpc.Core.Status(StatusCode.NotFound, $"no job with id '{id}'"));

    private static RpcException Unavailable(Exception e) =>
        new(new Grpc.Core.Status(StatusCode.Unavailable, $"the coordinator did not answer in time ({e.Message}); retry"));

    /// <summary>A call into the job service; its timeouts become UNAVAILABLE, which clients may retry.</summary>
    private static async Task<T> Call<T>(Func<Task<T>> call)
    {
        try { return await call(); }
        catch (TimeoutException e) { throw Unavailable(e); }
        catch (Akka.Actor.AskTimeoutException e) { throw Unavailable(e); }
    }
}
