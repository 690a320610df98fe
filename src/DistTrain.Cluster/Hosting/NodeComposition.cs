using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Worker;
using DistTrain.Training.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace DistTrain.Cluster.Hosting;

/// <summary>The composition root of a node: Akka cluster, the training engine behind workers, and the data plane.</summary>
public static class NodeComposition
{
    /// <param name="quietHost">Only warnings, from the generic host and Akka (a node embedded in a command, e.g. `disttrain local`).</param>
    public static IHost Build(NodeSettings settings, bool quietHost = false)
    {
        if (settings.TorchThreads > 0) torch.set_num_threads(settings.TorchThreads);
        var builder = Host.CreateApplicationBuilder();
        if (quietHost) builder.Logging.SetMinimumLevel(LogLevel.Warning);
        IReducerHost? reducer = settings.IsCoordinator ? new CollectiveReducerHost(settings.Host, settings.AdvertisedHost) : null;
        builder.Services.AddDistTrainNode(settings,
            sessionsForDevice: _ => new StageSessionFactory(),
            dataPlanes: () => new CollectiveDataPlane(settings.Host, settings.AdvertisedHost),
            reducer,
            logLevel: quietHost ? "WARNING" : "INFO");
        return builder.Build();
    }
}
