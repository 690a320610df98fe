using System.Collections.Immutable;
using Akka.Actor;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Akka.Management.Dsl;
using Microsoft.AspNetCore.Builder;
using DistTrain.Cluster.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using AkkaCluster = Akka.Cluster.Cluster;
using MemberStatus = Akka.Cluster.MemberStatus;

namespace DistTrain.Host;

/// <summary>
/// The node's management routes (DISTTRAIN_MANAGEMENT_PORT, 8558 on Kubernetes), served by the node's web host
/// (<see cref="NodeWebHost"/>) on the management port:
/// <list type="bullet">
/// <item><c>/alive</c>: 200 while the actor system runs (the liveness probe);</item>
/// <item><c>/ready</c>: 200 once this node is an Up cluster member, 503 before and after (the readiness probe);</item>
/// <item><c>/bootstrap/seed-nodes</c>: the Akka.Management cluster-bootstrap contact-point route, in its JSON
/// protocol, which the bootstrap of other pods polls.</item>
/// </list>
/// Akka.Management's own HTTP server (Akka.Http.Shim on Ceen.Httpd) cannot serve here: the Ceen.Httpd 0.9.10 that
/// restores with Akka.Management 1.5.73 lacks the method the shim calls (MissingMethodException at bind), and
/// Akka.Management for .NET has no /ready or /alive anyway. So its routes are served by our Kestrel like every other
/// port. Bootstrap itself (discovery, probing, the join decision) is Akka.Management's, started by
/// <see cref="ClusterBootstrapStart"/> once the contact-point route is up.
/// </summary>
public static class ManagementEndpoint
{
    public const string ReadyPath = "/ready";
    public const string AlivePath = "/alive";
    public const string SeedNodesPath = "/bootstrap/seed-nodes";

    /// <summary>Maps the three routes; <paramref name="scope"/> is applied to each (the host restricts them to the management port).</summary>
    public static void MapManagement(this IEndpointRouteBuilder app, Action<IEndpointConventionBuilder> scope)
    {
        // The actor system is resolved per request: Akka's hosted service has started it before the web server starts.
        ActorSystem System() => app.ServiceProvider.GetRequiredService<ActorSystem>();
        scope(app.MapGet(AlivePath, () => Answer(Liveness(System()))));
        scope(app.MapGet(ReadyPath, () => Answer(Readiness(System()))));
        scope(app.MapGet(SeedNodesPath, () => SeedNodes(System())));
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

/// <summary>
/// Starts Akka.Management's cluster bootstrap (DISTTRAIN_DISCOVERY=kubernetes) once the web host serves the
/// contact-point route: bootstrap needs to know its own contact point (how the others reach this node's management
/// port), which Akka.Management learns when its routes are taken; then discovery, probing and joining run in its actors.
/// </summary>
public sealed class ClusterBootstrapStart(NodeSettings settings, ActorSystem system, ILogger<ClusterBootstrapStart> log) : IHostedLifecycleService
{
    public async Task StartedAsync(CancellationToken ct)
    {
        log.LogInformation("management endpoint on {Host}:{Port}", settings.Host, settings.ManagementPort);
        if (settings.Discovery != NodeSettings.KubernetesDiscovery) return;
        var bootstrap = ClusterBootstrap.Get(system);
        bootstrap.Routes(ManagementRouteProviderSettings.Create(new Uri($"http://{settings.AdvertisedHost}:{settings.ManagementPort}/"), true));
        await bootstrap.Start();
    }

    public Task StartAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StartingAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken ct) => Task.CompletedTask;
}
