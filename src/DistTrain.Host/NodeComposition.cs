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

namespace DistTrain.Host;

/// <summary>
/// The composition root of a node, the only one: the actor system (<see cref="AkkaNode"/>), the training engine behind
/// the workers' seams (Training), the data plane (Collective), and the node's one web host (<see cref="NodeWebHost"/>:
/// gRPC job API, <c>/metrics</c>, management) when it serves any HTTP port.
/// </summary>
/// <remarks>Run one with `disttrain node` (settings from flags and <see cref="NodeEnvironment"/>), or `disttrain local`.</remarks>
public static class NodeComposition
{
    /// <param name="quietHost">A node embedded in a command (e.g. `disttrain local`, tests): only warnings from the host and
    /// Akka, and no console lifetime of the host's own: the embedding command starts and stops it (Akka still runs its
    /// coordinated shutdown on Ctrl+C and SIGTERM, which stops the host; see <see cref="LocalCluster.Stopping"/>).</param>
    public static IHost Build(NodeSettings settings, bool quietHost = false)
    {
        settings.Validate();
        if (settings.TorchThreads > 0) torch.set_num_threads(settings.TorchThreads);
        // One web host per node, and only when it has a port to serve: Kestrel with no listener would bind its default port.
        IHostApplicationBuilder builder = NodeWebHost.Needed(settings) ? WebApplication.CreateSlimBuilder() : Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        if (quietHost)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        }
        var dataPlane = new DistTrain.Collective.DataPlaneOptions { Integrity = settings.DataPlaneIntegrity, SharedMemory = settings.DataPlaneSharedMemory };
        IReducerHost? reducer = settings.IsCoordinator ? new CollectiveReducerHost(settings.Host, settings.AdvertisedHost, dataPlane) : null;
        builder.Services.AddDistTrainNode(settings,
            new NodeEngine(
                SessionsOn: _ => new StageSessionFactory(settings.DataRoot),
                ShardsOn: _ => new ShardRunner(settings.DataRoot),
                Inference: new InferenceRunner(),
                Checkpoints: HfCheckpointModels.Instance),
            dataPlanes: () => new CollectiveDataPlane(settings.Host, settings.AdvertisedHost, dataPlane),
            reducer,
            logLevel: quietHost ? "WARNING" : "INFO");
        if (builder is not WebApplicationBuilder web) return ((HostApplicationBuilder)builder).Build();
        NodeWebHost.Configure(web, settings);
        return NodeWebHost.Map(web.Build(), settings);
    }
}

/// <summary>The lifetime of a host embedded in a command: starts and stops when the command says, and leaves signals alone.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken ct) => Task.CompletedTask;
    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
