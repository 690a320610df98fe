using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Observability;
using DistTrain.Cluster.Worker;
using DistTrain.Contracts.Protocols;
using DistTrain.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace DistTrain.Cluster.Tests.Observability;

/// <summary>
/// The metrics actor on a one-node cluster (coordinator and worker roles) with a real <c>/metrics</c> endpoint: events
/// published on the node's event stream and its own cluster membership come out of an HTTP scrape.
/// </summary>
public sealed class MetricsActorTests() : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString("""
    akka.actor.provider = cluster
    akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
    akka.cluster.roles = [coordinator, worker]
    akka.loglevel = WARNING
    """))
{
    [Fact]
    public async Task Events_on_the_stream_and_membership_are_served_at_slash_metrics()
    {
        var registry = Metrics.NewCustomRegistry();
        var metrics = new DistTrainMetrics(registry, "127.0.0.1:1", ["coordinator", "worker"]);
        int port = LoopbackPorts.Free();
        await using var endpoint = MetricsOnly(registry, port);
        await endpoint.StartAsync();
        try
        {
            Sys.ActorOf(MetricsActor.Props(new MetricsRecorder(metrics), coordinator: true, worker: true));
            var cluster = Akka.Cluster.Cluster.Get(Sys);
            cluster.Join(cluster.SelfAddress);

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            async Task<IReadOnlyList<Sample>> Scrape() => Exposition.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));

            // The actor subscribes when it starts; publish until it has (bounded), then the rest.
            await AwaitAssertAsync(async () =>
            {
                Sys.EventStream.Publish(new JobQueueChanged(3, 1));
                Assert.Equal(3, (await Scrape()).Single("disttrain_job_queue_length"));
            }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100));

            var view = new StageView("lm", "pretrain", JobState.Running, 0, 10, new Dictionary<string, double>());
            Sys.EventStream.Publish(new JobActivity("j1", "tiny-dp", new JobEvent(1, DateTimeOffset.UtcNow, new StageChanged(view))));
            var step = new StepCompleted("j1", "lm", 1, 0, 0, 2.5, 1, 1e-3, 500, 0.5, 0.1, 0.01, null, 1024);
            Sys.EventStream.Publish(new WorkerReport("127.0.0.1:1/cpu", step));
            Sys.EventStream.Publish(new GenerationStarted("j1", "lm", 1, ["127.0.0.1:1/cpu"], 0));
            Sys.EventStream.Publish(step);   // the coordinator's copy: counted once as tokens, not as a rank series

            await AwaitAssertAsync(async () =>
            {
                var s = await Scrape();
                Assert.Equal(1, s.Single("disttrain_job_state", ("job_id", "j1"), ("state", "running")));
                Assert.Equal(1, s.Single("disttrain_stage_state", ("job_id", "j1"), ("stage", "lm"), ("state", "running")));
                Assert.Equal(1, s.Single("disttrain_steps_total", ("job_id", "j1"), ("rank", "0"), ("node", "127.0.0.1:1")));
                Assert.Equal(1024, s.Single("disttrain_allreduce_bytes_total", ("job_id", "j1"), ("rank", "0")));
                Assert.Equal(500, s.Single("disttrain_tokens_total", ("job_id", "j1"), ("stage", "lm")));
                Assert.Equal(0, s.Single("disttrain_straggler_gap_seconds", ("job_id", "j1"), ("rank", "0"), ("node", "127.0.0.1:1")));
                Assert.Equal(1, s.Single("disttrain_cluster_members", ("role", "worker"), ("status", "up")));
                Assert.Equal(1, s.Single("disttrain_cluster_members", ("role", "coordinator"), ("status", "up")));
            }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(200));
        }
        finally
        {
            await endpoint.StopAsync();
        }
    }

    [Fact]
    public async Task A_taken_port_fails_with_the_port_in_the_message()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await using var endpoint = MetricsOnly(Metrics.NewCustomRegistry(), port);
        var e = await Assert.ThrowsAsync<IOException>(() => endpoint.StartAsync());
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }

    /// <summary>A web host serving only <c>/metrics</c>, with the node's own listener and route (<see cref="NodeWebHost"/>).</summary>
    private static WebApplication MetricsOnly(CollectorRegistry registry, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => NodeWebHost.Listen(kestrel, "127.0.0.1", port));
        var app = builder.Build();
        app.UseRouting();
        app.UseOwnPortOnly();
        app.MapNodeMetrics(registry, port);
        return app;
    }

}
