using Akka.Hosting;
using DistTrain.Cluster.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// Prometheus on a node: when <see cref="NodeSettings.MetricsPort"/> is above 0, the node's registry
/// (<see cref="DistTrainMetrics"/>, which the host's web host serves at <c>/metrics</c> on that port) and the metrics
/// actor that fills it. Each node has its own registry, so several nodes can share a process (the coordinator of a
/// local cluster and tests do).
/// </summary>
public static class MetricsHosting
{
    public static IServiceCollection AddDistTrainMetrics(this IServiceCollection services, NodeSettings settings)
    {
        if (settings.MetricsPort == 0) return services;
        var metrics = new DistTrainMetrics(Metrics.NewCustomRegistry(), NodeName(settings), settings.Roles);
        services.AddSingleton(metrics);
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
