using System.Net;
using System.Security.Cryptography.X509Certificates;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Observability;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace DistTrain.Host;

/// <summary>
/// A node's one web host: a single Kestrel listening on each of the node's HTTP ports, each port serving its own routes.
/// <list type="bullet">
/// <item>gRPC port (coordinator role, <c>DISTTRAIN_GRPC_PORT</c>): the job API over HTTP/2 (cleartext h2c, or TLS when a
/// certificate and key are configured), bearer-token authentication as ASP.NET Core middleware;</item>
/// <item>metrics port (<c>DISTTRAIN_METRICS_PORT</c>): Prometheus <c>/metrics</c> (prometheus-net.AspNetCore), no auth;</item>
/// <item>management port (<c>DISTTRAIN_MANAGEMENT_PORT</c>): <c>/alive</c>, <c>/ready</c>, the bootstrap contact point, no auth.</item>
/// </list>
/// The ports stay separate (as the manifests, probes and scrape configs expect): a route answers only on its own port,
/// so the unauthenticated probe and scrape ports never reach the job API, and the API port serves HTTP/2 only.
/// </summary>
public static class NodeWebHost
{
    /// <summary>Whether the node needs a web host at all (a node with every port at 0 serves no HTTP).</summary>
    public static bool Needed(NodeSettings settings) => ServesApi(settings) || settings.MetricsPort > 0 || settings.ManagementPort > 0;

    public static bool ServesApi(NodeSettings settings) => settings.IsCoordinator && settings.GrpcPort > 0;

    /// <summary>Kestrel's listeners and the services behind the node's ports.</summary>
    public static void Configure(WebApplicationBuilder builder, NodeSettings settings)
    {
        settings.Validate();   // among others: every port its own
        // Loaded now, so a bad certificate stops the start with its reason.
        X509Certificate2? certificate = ServesApi(settings) && settings.TlsCertificate is { } cert ? ApiServer.LoadCertificate(cert, settings.TlsKey!) : null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = ApiServer.MaxReceiveMessageBytes + 1024;
            if (ServesApi(settings))
                Listen(kestrel, settings.Host, settings.GrpcPort, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    if (certificate is not null) listen.UseHttps(certificate);
                });
            if (settings.MetricsPort > 0) Listen(kestrel, settings.Host, settings.MetricsPort);
            if (settings.ManagementPort > 0) Listen(kestrel, settings.Host, settings.ManagementPort);
        });
        if (ServesApi(settings)) builder.Services.AddJobApi(settings);
        if (settings.ManagementPort > 0)
            builder.Services.AddHostedService(sp => new ClusterBootstrapStart(settings, sp.GetRequiredService<Akka.Actor.ActorSystem>(),
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ClusterBootstrapStart>>()));
    }

    /// <summary>The middleware and routes of each port.</summary>
    public static WebApplication Map(WebApplication app, NodeSettings settings)
    {
        app.UseRouting();
        app.UseOwnPortOnly();
        if (ServesApi(settings))
        {
            app.UseJobApi();
            app.MapJobApi(e => e.OnPort(settings.GrpcPort));
        }
        if (settings.MetricsPort > 0) app.MapNodeMetrics(app.Services.GetRequiredService<DistTrainMetrics>().Registry, settings.MetricsPort);
        if (settings.ManagementPort > 0) app.MapManagement(e => e.OnPort(settings.ManagementPort));
        return app;
    }

    /// <summary>Prometheus's text exposition of <paramref name="registry"/> at <c>/metrics</c> on <paramref name="port"/>.</summary>
    public static IEndpointConventionBuilder MapNodeMetrics(this WebApplication app, CollectorRegistry registry, int port) =>
        app.MapMetrics("/metrics", registry).OnPort(port);

    /// <summary>Binds like the node's remoting: an IP address, <c>0.0.0.0</c> for every interface, or a host name.</summary>
    public static void Listen(KestrelServerOptions kestrel, string host, int port, Action<ListenOptions>? configure = null)
    {
        configure ??= _ => { };
        if (host is "localhost") kestrel.ListenLocalhost(port, configure);
        else if (IPAddress.TryParse(host, out var ip)) kestrel.Listen(ip, port, configure);
        else kestrel.ListenAnyIP(port, configure);
    }

    /// <summary>Marks an endpoint as served on one port only.</summary>
    public static TBuilder OnPort<TBuilder>(this TBuilder builder, int port) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ServedOnPort(port));

    /// <summary>
    /// Answers 404 for a route asked for on another port than its own (after routing, before authentication), so each
    /// port serves exactly its routes. The listening port is the connection's, not the Host header's, which port
    /// forwarding and Services rewrite.
    /// </summary>
    public static IApplicationBuilder UseOwnPortOnly(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<ServedOnPort>() is { } own && own.Port != context.Connection.LocalPort)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        await next(context);
    });

    private sealed record ServedOnPort(int Port);
}
