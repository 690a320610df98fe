using System.Collections.Immutable;
using System.Net;
using Akka.Actor;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Akka.Management.Dsl;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using AkkaCluster = Akka.Cluster.Cluster;
using MemberStatus = Akka.Cluster.MemberStatus;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// The node's management port (DISTTRAIN_MANAGEMENT_PORT, 8558 on Kubernetes), served by Kestrel:
/// <list type="bullet">
/// <item><c>/alive</c>: 200 while the actor system runs (the liveness probe);</item>
/// <item><c>/ready</c>: 200 once this node is an Up cluster member, 503 before and after (the readiness probe);</item>
/// <item><c>/bootstrap/seed-nodes</c>: the Akka.Management cluster-bootstrap contact-point route, in its JSON
/// protocol, which the bootstrap of other pods polls.</item>
/// </list>
/// Akka.Management's own HTTP server (Akka.Http.Shim on Ceen.Httpd) cannot serve here: the Ceen.Httpd 0.9.10 that
/// restores with Akka.Management 1.5.73 lacks the method the shim calls (MissingMethodException at bind), and
/// Akka.Management for .NET has no /ready or /alive anyway. Bootstrap itself (discovery, probing, the join decision)
/// is Akka.Management's, started here once the contact-point route is up.
/// </summary>
public sealed class ManagementEndpoint(NodeSettings settings, ActorSystem system, ILogger<ManagementEndpoint> log) : IHostedService, IAsyncDisposable
{
    public const string ReadyPath = "/ready";
    public const string AlivePath = "/alive";
    public const string SeedNodesPath = "/bootstrap/seed-nodes";

    private WebApplication? _app;

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (IPAddress.TryParse(settings.Host, out var ip)) k.Listen(ip, settings.ManagementPort);
            else k.ListenAnyIP(settings.ManagementPort);
        });
        _app = builder.Build();
        _app.MapGet(AlivePath, () => Answer(Liveness(system)));
        _app.MapGet(ReadyPath, () => Answer(Readiness(system)));
        _app.MapGet(SeedNodesPath, () => SeedNodes(system));
        await _app.StartAsync(ct);
        log.LogInformation("management endpoint on {Host}:{Port}", settings.Host, settings.ManagementPort);

        if (settings.Discovery == NodeSettings.KubernetesDiscovery)
        {
            // Bootstrap needs to know its own contact point (how the others reach this node's management port), which
            // Akka.Management learns when its routes are taken; then discovery, probing and joining run in its actors.
            var bootstrap = ClusterBootstrap.Get(system);
            bootstrap.Routes(ManagementRouteProviderSettings.Create(new Uri($"http://{settings.AdvertisedHost}:{settings.ManagementPort}/"), true));
            await bootstrap.Start();
        }
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (_app is not null) await _app.StopAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }

    /// <summary>Whether traffic may be routed here: this node is an Up member (not joining, leaving or downed).</summary>
    public static (bool Ok, string Status) Readiness(ActorSystem system)
    {
        var status = AkkaCluster.Get(system).SelfMember.Status;
        return (status == MemberStatus.Up, status.ToString());
    }

    /// <summary>Whether the process should be left running: its actor system has not terminated.</summary>
    public static (bool Ok, string Status) Liveness(ActorSystem system) =>
        system.WhenTerminated.IsCompleted ? (false, "Terminated") : (true, "Running");

    private static IResult Answer((bool Ok, string Status) check) =>
        Results.Json(new { status = check.Status }, statusCode: check.Ok ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);

    /// <summary>
    /// The members a joining node may use as seeds, in Akka.Management's JSON protocol. A node that has not joined yet
    /// answers too, with no members: that answer is how the contact points learn that no cluster exists and which of
    /// them should form it. (Its self member reads Removed until it joins, so Removed alone is no reason to refuse;
    /// a node on its way out, or whose cluster has shut down, is.)
    /// </summary>
    private static IResult SeedNodes(ActorSystem system)
    {
        var cluster = AkkaCluster.Get(system);
        if (cluster.IsTerminated || cluster.SelfMember.Status is MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Leaving)
            return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
        var state = cluster.State;
        var members = state.Members
            .Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
            .Select(m => new HttpBootstrapJsonProtocol.ClusterMember(m.UniqueAddress.Address, m.UniqueAddress.Uid, m.Status, m.Roles))
            .ToImmutableList();
        string json = JsonConvert.SerializeObject(new HttpBootstrapJsonProtocol.SeedNodes(cluster.SelfMember.UniqueAddress.Address, members));
        return Results.Content(json, "application/json");
    }
}
