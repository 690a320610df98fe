using System.Net;
using DistTrain.Cluster.Hosting;
using DistTrain.Deploy.Tests.Manifests;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Functional;

/// <summary>
/// The readiness and liveness paths the rendered manifests probe are served by a running node on its management
/// port: alive while it runs, ready only once it is an Up cluster member.
/// </summary>
public sealed class ProbeTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    /// <summary>The probes of the coordinator's node container, as Kubernetes will send them.</summary>
    private static (string Ready, string Alive) ProbePaths()
    {
        var node = Rendered.Of(Rendered.Gpu).One<V1StatefulSet>("disttrain-coordinator").Spec.Template.Spec.Containers.Single(c => c.Name == "node");
        return (node.ReadinessProbe.HttpGet.Path, node.LivenessProbe.HttpGet.Path);
    }

    /// <summary>Polls GET <paramref name="path"/> (the node is another process: no event to wait on) until it answers <paramref name="expected"/>.</summary>
    private static async Task<HttpStatusCode> PollUntil(HttpClient http, Uri node, string path, HttpStatusCode expected, NodeProcesses nodes)
    {
        var deadline = DateTime.UtcNow + Deadline;
        HttpStatusCode? last = null;
        string error = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(node, path));
                last = response.StatusCode;
                if (last == expected) return expected;
            }
            catch (HttpRequestException e) { error = e.Message; }   // not listening yet
            await Task.Delay(200);
        }
        throw new TimeoutException($"GET {path} on {node} answered {last?.ToString() ?? error} instead of {expected} within {Deadline}\n{nodes.Logs()}");
    }

    [Fact]
    public async Task A_node_that_joined_is_alive_and_ready()
    {
        var (ready, alive) = ProbePaths();
        using var nodes = new NodeProcesses();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var node = nodes.StartCoordinator("joined", seeds: []);   // no seeds: it forms the cluster itself, and is Up

        await PollUntil(http, node, ready, HttpStatusCode.OK, nodes);
        using var readiness = await http.GetAsync(new Uri(node, ready));
        Assert.Equal("{\"status\":\"Up\"}", await readiness.Content.ReadAsStringAsync());
        using var liveness = await http.GetAsync(new Uri(node, alive));
        Assert.Equal(HttpStatusCode.OK, liveness.StatusCode);
    }

    [Fact]
    public async Task A_node_that_cannot_join_is_alive_but_not_ready()
    {
        var (ready, alive) = ProbePaths();
        using var nodes = new NodeProcesses();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // Its only seed is a port nobody listens on: the node runs but never becomes a member.
        var node = nodes.StartCoordinator("orphan", seeds: [$"akka.ssl.tcp://disttrain@127.0.0.1:{LoopbackPorts.Free()}"]);

        await PollUntil(http, node, alive, HttpStatusCode.OK, nodes);
        using var readiness = await http.GetAsync(new Uri(node, ready));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
        Assert.DoesNotContain("\"Up\"", await readiness.Content.ReadAsStringAsync());
    }
}
