using Akka.Hosting;
using DistTrain.Cluster.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Prometheus;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// Prometheus on a node: when <see cref="NodeSettings.MetricsPort"/> is above 0, a <c>/metrics</c> endpoint on that port
/// (bound to the node's host address) and the metrics actor. Each node has its own registry, so several nodes can
/// share a process (the coordinator of a local cluster and tests do).
/// </summary>
public static class MetricsHosting
{
    public static IServiceCollection AddDistTrainMetrics(this IServiceCollection services, NodeSettings settings)
    {
        if (settings.MetricsPort == 0) return services;
        var metrics = new DistTrainMetrics(Metrics.NewCustomRegistry(), NodeName(settings), settings.Roles);
        services.AddSingleton(metrics);
        services.AddHostedService(_ => new MetricsEndpoint(metrics.Registry, settings.Host, settings.MetricsPort));
        return services;
    }

    public static AkkaConfigurationBuilder WithDistTrainMetrics(this AkkaConfigurationBuilder builder, NodeSettings settings)
    {
        if (settings.MetricsPort == 0) return builder;
        return builder.WithActors((system, _, resolver) =>
            system.ActorOf(MetricsActor.Props(new MetricsRecorder(resolver.GetService<DistTrainMetrics>()), settings.IsCoordinator, settings.IsWorker), "metrics"));
    }

    /// <summary>A node's <c>node</c> label: the host and port of its cluster address, as in its worker ids.</summary>
    public static string NodeName(NodeSettings settings) => $"{settings.AdvertisedHost}:{settings.Port}";
}

/// <summary>Serves one registry at <c>http://HOST:PORT/metrics</c> (prometheus-net's HttpListener server) for the host's lifetime.</summary>
public sealed class MetricsEndpoint(CollectorRegistry registry, string host, int port) : IHostedService
{
    private MetricServer? _server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // HttpListener spells "every interface" as +.
        string hostname = host is "0.0.0.0" or "::" or "*" ? "+" : host;
        var server = new MetricServer(hostname, port, "metrics/", registry);
        try { server.Start(); }
        catch (Exception e) when (e is System.Net.HttpListenerException or InvalidOperationException)
        {
            throw new InvalidOperationException($"cannot serve /metrics on {host}:{port}: {e.Message}", e);
        }
        _server = server;
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null) await _server.StopAsync();
    }
}
