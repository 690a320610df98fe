using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;

namespace DistTrain.Api.Tests.Functional;

/// <summary>The Jobs service end to end on a real node: concurrency, status codes, health and reflection.</summary>
[Collection(SharedNodeCollection.Name)]
public sealed class JobsServiceTests(SharedNode shared)
{
    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task Twenty_concurrent_submissions_are_all_accepted_and_listed()
    {
        using var channel = shared.Node.Channel();
        var client = new Jobs.JobsClient(channel);
        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt($"concurrent-{i:D2}"), Quick = true }, deadline: Deadline).ResponseAsync));
        var ids = replies.Select(r => r.JobId).ToList();
        Assert.Equal(20, ids.Distinct().Count());

        var listed = await client.ListJobsAsync(new ListJobsRequest { Limit = 500 }, deadline: Deadline);
        var byId = listed.Jobs.ToDictionary(j => j.JobId);
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            Assert.True(byId.TryGetValue(id, out var job), $"job {id} not listed");
            Assert.Equal($"concurrent-{i:D2}-quick", job!.Name);   // the quick transform marks the name
            Assert.Equal(State.Queued, job.State);   // the node has no workers
        }
        // Newest first.
        var submitted = listed.Jobs.Select(j => j.Submitted.ToDateTimeOffset()).ToList();
        Assert.Equal(submitted.OrderByDescending(t => t), submitted);
        // The name filter finds exactly one.
        var one = await client.ListJobsAsync(new ListJobsRequest { Name = "concurrent-07-quick" }, deadline: Deadline);
        Assert.Equal(ids[7], Assert.Single(one.Jobs).JobId);

        // Cancelled concurrently too; each one's event stream ends with the cancellation.
        var ends = await Task.WhenAll(ids.Select(async id =>
        {
            await client.CancelJobAsync(new CancelJobRequest { JobId = id }, deadline: Deadline);
            return await LastEvent(client, id);
        }));
        Assert.All(ends, e => Assert.Equal(State.Cancelled, e.Finished.State));
        var cancelled = await client.ListJobsAsync(new ListJobsRequest { State = State.Cancelled, Limit = 500 }, deadline: Deadline);
        var missing = ids.Except(cancelled.Jobs.Select(j => j.JobId)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} not listed as cancelled among {cancelled.Jobs.Count}: {string.Join(", ", missing)}");
    }

    /// <summary>Reads a job's event stream to its end (the job's end), checking the numbering on the way.</summary>
    private static async Task<JobEvent> LastEvent(Jobs.JobsClient client, string id)
    {
        using var call = client.WatchJob(new WatchJobRequest { JobId = id }, deadline: DateTime.UtcNow.AddSeconds(90));
        var events = new List<JobEvent>();
        while (await call.ResponseStream.MoveNext()) events.Add(call.ResponseStream.Current);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));
        Assert.Equal(JobEvent.EventOneofCase.Finished, events[^1].EventCase);
        return events[^1];
    }

    [Fact]
    public async Task Unknown_ids_are_not_found_and_ended_jobs_cannot_be_cancelled()
    {
        using var channel = shared.Node.Channel();
        var client = new Jobs.JobsClient(channel);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() =>
            client.GetJobAsync(new GetJobRequest { JobId = "no-such-job" }, deadline: Deadline).ResponseAsync)).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() =>
            client.CancelJobAsync(new CancelJobRequest { JobId = "no-such-job" }, deadline: Deadline).ResponseAsync)).StatusCode);
        var watchMissing = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.WatchJob(new WatchJobRequest { JobId = "no-such-job" }, deadline: Deadline);
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.NotFound, watchMissing.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() =>
            client.GetJobAsync(new GetJobRequest { JobId = "" }, deadline: Deadline).ResponseAsync)).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() =>
            client.ListJobsAsync(new ListJobsRequest { Limit = -1 }, deadline: Deadline).ResponseAsync)).StatusCode);

        var id = (await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt("cancel-twice") }, deadline: Deadline)).JobId;
        var first = await client.CancelJobAsync(new CancelJobRequest { JobId = id }, deadline: Deadline);
        Assert.Equal(id, first.JobId);
        // The stream follows the job to its end (the cancellation) and completes.
        Assert.Equal(State.Cancelled, (await LastEvent(client, id)).Finished.State);
        var again = await Assert.ThrowsAsync<RpcException>(() => client.CancelJobAsync(new CancelJobRequest { JobId = id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);
        Assert.Contains("already ended", again.Status.Detail);
    }

    [Fact]
    public async Task Health_reports_serving_and_reflection_lists_the_services()
    {
        using var channel = shared.Node.Channel();
        var health = new Health.HealthClient(channel);
        foreach (var service in new[] { "", "disttrain.v1.Jobs" })
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
                (await health.CheckAsync(new HealthCheckRequest { Service = service }, deadline: Deadline)).Status);

        var reflection = new ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo(deadline: Deadline);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("disttrain.v1.Jobs", names);
        Assert.Contains("grpc.health.v1.Health", names);
        Assert.Contains("grpc.reflection.v1.ServerReflection", names);
        Assert.Contains("grpc.reflection.v1alpha.ServerReflection", names);
    }
}

/// <summary>Health follows the singletons behind the API, not just the process.</summary>
public sealed class HealthTests
{
    [Fact]
    public async Task Health_is_not_serving_while_the_node_cannot_reach_its_cluster()
    {
        // A seed nobody listens on: the node never joins, so no singleton starts and nothing answers behind the API.
        await using var node = await ApiNode.StartAsync(seeds: [$"akka.ssl.tcp://disttrain@127.0.0.1:{LoopbackPorts.Free()}"]);
        using var channel = node.Channel();
        var health = new Health.HealthClient(channel);
        // A node that joins becomes SERVING within a few seconds (the shared node's start shows it); this one stays
        // NOT_SERVING however long it is asked. Each check takes its 3 s timeout, so four cover 12 s.
        for (int i = 0; i < 4; i++)
        {
            var check = await health.CheckAsync(new HealthCheckRequest { Service = "disttrain.v1.Jobs" }, deadline: DateTime.UtcNow.AddSeconds(30));
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, check.Status);
        }
    }
}
