using DistTrain.Host;
using System.CommandLine;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain node`: one cluster node. Every option falls back to its environment variable (read once by
/// <see cref="NodeEnvironment"/>; names in <see cref="EnvironmentVariables"/>), which is how Kubernetes configures pods.
///   disttrain node --roles coordinator,worker --host 127.0.0.1 --port 4053 --devices cpu
/// </summary>
public static class NodeCommand
{
    public static Command Create()
    {
        var roles = new Option<string>("--roles") { Description = $"Comma-separated roles: coordinator, worker (env {EnvironmentVariables.Roles})" };
        var host = new Option<string>("--host") { Description = $"Address to bind remoting and the data plane to (env {EnvironmentVariables.Host})" };
        var publicHost = new Option<string>("--public-host") { Description = $"Address other nodes use to reach this one (env {EnvironmentVariables.PublicHost})" };
        var port = new Option<int?>("--port") { Description = $"Akka remoting port (env {EnvironmentVariables.Port})" };
        var seeds = new Option<string>("--seeds") { Description = $"Comma-separated seed addresses akka.ssl.tcp://disttrain@host:port (akka.tcp:// with DISTTRAIN_CLUSTER_TLS=off) (env {EnvironmentVariables.Seeds})" };
        var devices = new Option<string>("--devices") { Description = $"cpu, or cuda:0,cuda:1,… (env {EnvironmentVariables.Devices})" };
        var runRoot = new Option<string>("--run-root") { Description = $"Shared folder for checkpoints and stage outputs (env {EnvironmentVariables.RunRoot})" };
        var grpcPort = new Option<int?>("--grpc-port") { Description = $"gRPC job API port on coordinator nodes, 0 for none (env {EnvironmentVariables.GrpcPort}; default {DefaultPorts.Grpc})" };
        var metricsPort = new Option<int?>("--metrics-port") { Description = $"Prometheus /metrics port, 0 for none (env {EnvironmentVariables.MetricsPort}; default {DefaultPorts.Metrics})" };
        var managementPort = new Option<int?>("--management-port") { Description = $"Akka.Management port, 0 for none (env {EnvironmentVariables.ManagementPort}; default 0)" };
        var jobStore = new Option<string>("--job-store") { Description = $"sqlite:PATH or postgresql:CONNECTION-STRING (env {EnvironmentVariables.JobStore}; default sqlite:RUN_ROOT/jobs.db)" };
        var insecure = new Option<bool>("--allow-anonymous") { Description = $"Serve the job API without a bearer token (local use only; otherwise set {EnvironmentVariables.ApiToken})" };
        var cmd = new Command("node", "Run one DistTrain cluster node.") { roles, host, publicHost, port, seeds, devices, runRoot, grpcPort, metricsPort, managementPort, jobStore, insecure };
        cmd.SetAction(async (parse, ct) =>
        {
            IHost node;
            NodeSettings settings;
            try
            {
                var env = NodeEnvironment.Read();   // every variable, checked, before anything starts
                settings = Settings(env, parse.GetValue(roles), parse.GetValue(host), parse.GetValue(publicHost), parse.GetValue(port),
                    parse.GetValue(seeds), parse.GetValue(devices), parse.GetValue(runRoot)) with
                {
                    GrpcPort = parse.GetValue(grpcPort) ?? env.GrpcPort ?? DefaultPorts.Grpc,
                    MetricsPort = parse.GetValue(metricsPort) ?? env.MetricsPort ?? DefaultPorts.Metrics,
                    ManagementPort = parse.GetValue(managementPort) ?? env.ManagementPort ?? 0,
                    JobStore = parse.GetValue(jobStore) ?? env.JobStore,
                    AllowAnonymousApi = parse.GetValue(insecure),
                };
                settings.Validate();
                node = NodeComposition.Build(settings);   // also loads the TLS certificate, which may fail
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"disttrain node: {e.Message}");
                return 2;
            }
            return await RunRejoiningAsync(node, settings, ct);
        });
        return cmd;
    }

    /// <summary>Exit code of a node the cluster downed that has no other seed to rejoin through.</summary>
    public const int ExitDownedWithoutSeeds = 3;

    /// <summary>
    /// Runs the node; when the cluster downs it (a partition the split-brain resolver settled against it), or Akka.Remote
    /// stops it after a failed TLS handshake, starts a fresh host that joins the seeds again, after <see cref="RejoinPolicy"/>'s
    /// bounded backoff. TLS failures that persist end the process with <see cref="RejoinPolicy.ExitTlsHandshakeFailed"/>;
    /// any other stop ends it with 0. The first host is built by the caller, so bad settings fail before anything runs.
    /// </summary>
    private static async Task<int> RunRejoiningAsync(IHost first, NodeSettings settings, CancellationToken ct)
    {
        var policy = RejoinPolicy.Default;
        int stops = 0;
        for (var node = first; ; node = NodeComposition.Build(settings))
        {
            var started = DateTime.UtcNow;
            RejoinPolicy.StopReason reason;
            // Taken before running: RunAsync disposes the host and its services when it returns.
            var system = node.Services.GetRequiredService<ActorSystem>();
            using (node)
            {
                await node.RunAsync(ct);
                reason = ct.IsCancellationRequested ? RejoinPolicy.StopReason.Requested : RejoinPolicy.ReasonOf(system);
            }
            stops = policy.Count(stops, DateTime.UtcNow - started);
            string why = reason switch
            {
                RejoinPolicy.StopReason.TlsHandshakeFailed => "stopped by Akka.Remote after a failed TLS handshake (a peer that closed mid-handshake, or a certificate it refused: see the log above)",
                RejoinPolicy.StopReason.CoordinatorAbsent => $"in a cluster without a coordinator for {settings.RejoinWithoutCoordinator.TotalSeconds:F0} s and left it",
                _ => "downed by the cluster",
            };
            if (policy.Decide(reason, stops) is not { } delay)
            {
                if (reason != RejoinPolicy.StopReason.TlsHandshakeFailed) return 0;
                Console.Error.WriteLine($"disttrain node: {settings.Address} was {why} {stops} times in a row; giving up");
                return RejoinPolicy.ExitTlsHandshakeFailed;
            }
            if (RejoinPolicy.RejoinSettings(settings) is not { } rejoin)
            {
                Console.Error.WriteLine($"disttrain node: {settings.Address} was {why} and lists no seed but itself, " +
                    "so a fresh actor system could only form a second cluster; exiting (list other nodes in --seeds to let it rejoin)");
                return reason == RejoinPolicy.StopReason.TlsHandshakeFailed ? RejoinPolicy.ExitTlsHandshakeFailed : ExitDownedWithoutSeeds;
            }
            settings = rejoin;
            // Written to stderr as well as Akka's log: an operator reading a pod's log must see why it restarted.
            Console.Error.WriteLine($"disttrain node: {settings.Address} was {why} ({stops} in a row); " +
                $"starting a fresh actor system that rejoins through {(settings.Seeds.Count > 0 ? string.Join(", ", settings.Seeds) : "cluster bootstrap")} in {delay.TotalSeconds:F0} s");
            try { await Task.Delay(delay, ct); }
            catch (OperationCanceledException) { return 0; }
        }
    }

    /// <summary>Merges flags over environment variables over defaults.</summary>
    public static NodeSettings Settings(NodeEnvironment env, string? roles, string? host, string? publicHost, int? port, string? seeds, string? devices, string? runRoot)
    {
        static string[] List(string? s) => (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new NodeSettings(
            Roles: List(roles ?? env.Roles ?? "coordinator,worker"),
            Host: host ?? env.Host ?? "127.0.0.1",
            Port: port ?? env.Port ?? DefaultPorts.Remoting,
            Seeds: List(seeds ?? env.Seeds),
            Devices: List(devices ?? env.Devices ?? "cpu"),
            RunRoot: Path.GetFullPath(runRoot ?? env.RunRoot ?? "runs"),
            PublicHost: publicHost ?? env.PublicHost,
            TorchThreads: env.TorchThreads)
        {
            DataRoot = env.DataRoot,
            ApiToken = env.ApiToken,
            ApiTokenFile = env.ApiTokenFile,
            ApiTokenGrace = env.ApiTokenGrace ?? TimeSpan.FromMinutes(5),
            RejoinWithoutCoordinator = env.RejoinWithoutCoordinator ?? NodeSettings.DefaultRejoinWithoutCoordinator,
            DataPlaneIntegrity = env.DataPlaneIntegrity ?? new DistTrain.Collective.DataPlaneOptions().Integrity,
            DataPlaneSharedMemory = env.DataPlaneSharedMemory ?? new DistTrain.Collective.DataPlaneOptions().SharedMemory,
            TlsCertificate = env.TlsCertificate,
            TlsKey = env.TlsKey,
            Discovery = env.Discovery ?? NodeSettings.SeedsDiscovery,
            ClusterTls = env.ClusterTls,
            PlaintextRemoting = env.PlaintextRemoting,
        };
    }
}
