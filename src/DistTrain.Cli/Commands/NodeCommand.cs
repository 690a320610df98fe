using DistTrain.Host;
using System.CommandLine;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
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
            try
            {
                var env = NodeEnvironment.Read();   // every variable, checked, before anything starts
                var settings = Settings(env, parse.GetValue(roles), parse.GetValue(host), parse.GetValue(publicHost), parse.GetValue(port),
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
            using var host_ = node;
            await host_.RunAsync(ct);
            return 0;
        });
        return cmd;
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
            DataPlaneIntegrity = env.DataPlaneIntegrity ?? new DistTrain.Collective.DataPlaneOptions().Integrity,
            TlsCertificate = env.TlsCertificate,
            TlsKey = env.TlsKey,
            Discovery = env.Discovery ?? NodeSettings.SeedsDiscovery,
            ClusterTls = env.ClusterTls,
            PlaintextRemoting = env.PlaintextRemoting,
        };
    }
}
