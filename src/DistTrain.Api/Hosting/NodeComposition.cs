using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Worker;
using DistTrain.Execution;
using DistTrain.Training.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace DistTrain.Api.Hosting;

/// <summary>
/// The composition root of a node: Akka cluster, the training engine behind workers, and the data plane; on a
/// coordinator node with a gRPC port, Kestrel serving the job API in the same process (<see cref="ApiServer"/>).
/// </summary>
public static class NodeComposition
{
    /// <param name="quietHost">A node embedded in a command (e.g. `disttrain local`, tests): only warnings from the host and
    /// Akka, and no console lifetime of the host's own: the embedding command starts and stops it (Akka still runs its
    /// coordinated shutdown on Ctrl+C and SIGTERM, which stops the host; see <see cref="LocalCluster.Stopping"/>).</param>
    public static IHost Build(NodeSettings settings, bool quietHost = false)
    {
        settings.Validate();
        if (settings.TorchThreads > 0) torch.set_num_threads(settings.TorchThreads);
        bool serveApi = settings.IsCoordinator && settings.GrpcPort > 0;
        IHostApplicationBuilder builder = serveApi ? WebApplication.CreateSlimBuilder() : Host.CreateApplicationBuilder();
        if (quietHost)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        }
        var dataPlane = new DistTrain.Collective.DataPlaneOptions { Integrity = settings.DataPlaneIntegrity };
        IReducerHost? reducer = settings.IsCoordinator ? new CollectiveReducerHost(settings.Host, settings.AdvertisedHost, dataPlane) : null;
        builder.Services.AddDistTrainNode(settings,
            new NodeEngine(
                SessionsOn: _ => new StageSessionFactory(settings.DataRoot),
                ShardsOn: _ => new ShardRunner(settings.DataRoot),
                Inference: new InferenceRunner()),
            dataPlanes: () => new CollectiveDataPlane(settings.Host, settings.AdvertisedHost, dataPlane),
            reducer,
            logLevel: quietHost ? "WARNING" : "INFO");
        if (builder is not WebApplicationBuilder web) return ((HostApplicationBuilder)builder).Build();
        var app = web.AddJobApi(settings).Build();
        return app.MapJobApi();
    }
}

/// <summary>The lifetime of a host embedded in a command: starts and stops when the command says, and leaves signals alone.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
