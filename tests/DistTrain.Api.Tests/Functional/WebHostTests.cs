using System.Net;
using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using DistTrain.Host;
using Grpc.Core;

namespace DistTrain.Api.Tests.Functional;

/// <summary>
/// A coordinator's one web host: the job API, <c>/metrics</c> and the management routes are listeners of one Kestrel,
/// each port answering only its own routes; the metrics and management ports need no token, the API does.
/// </summary>
public sealed class WebHostTests
{
    private const string Token = "web-host-token";

    [Fact]
    public async Task Each_port_serves_its_own_routes_and_only_those()
    {
        await using var node = await ApiNode.StartAsync(token: Token,
            configure: s => s with { MetricsPort = LoopbackPorts.Free(), ManagementPort = LoopbackPorts.Free() });
        await node.WaitUntilServingAsync();
        string metrics = $"http://127.0.0.1:{node.Settings.MetricsPort}", management = $"http://127.0.0.1:{node.Settings.ManagementPort}";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var scrape = await http.GetAsync($"{metrics}/metrics");
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.Contains("disttrain_cluster_members", await scrape.Content.ReadAsStringAsync());   // the node's own registry, no token
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(management + ManagementEndpoint.AlivePath)).StatusCode);

        // Routes of one port are not found on another.
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"{management}/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(metrics + ManagementEndpoint.AlivePath)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(metrics + ManagementEndpoint.ReadyPath)).StatusCode);

        // The API answers on its port with the token, and not at all on the metrics port.
        using var api = node.Channel(Token);
        await new Jobs.JobsClient(api).ListJobsAsync(new ListJobsRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
        using var wrongPort = DistTrain.Api.Client.ApiChannel.Create(metrics, Token);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new Jobs.JobsClient(wrongPort).ListJobsAsync(new ListJobsRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        Assert.NotEqual(StatusCode.OK, e.StatusCode);
    }

    [Fact]
    public void Two_services_on_one_port_are_refused_with_their_names()
    {
        using var dir = new TempDir();
        int port = LoopbackPorts.Free();
        var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", LoopbackPorts.Free(), [], [], dir.Path)
            { GrpcPort = port, MetricsPort = port, AllowAnonymousApi = true, ClusterTls = ApiNode.LocalTls(dir.Path) };
        var e = Assert.Throws<ArgumentException>(() => NodeComposition.Build(settings));
        Assert.Contains("gRPC and metrics ports are both", e.Message);
    }
}
