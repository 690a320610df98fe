using System.CommandLine;
using DistTrain.Cluster.Hosting;
using Microsoft.Extensions.Hosting;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain node`: one cluster node. Every option falls back to its environment variable
/// (<see cref="EnvironmentVariables"/>), which is how Kubernetes configures pods.
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
        var seeds = new Option<string>("--seeds") { Description = $"Comma-separated seed addresses akka.tcp://disttrain@host:port (env {EnvironmentVariables.Seeds})" };
        var devices = new Option<string>("--devices") { Description = $"cpu, or cuda:0,cuda:1,… (env {EnvironmentVariables.Devices})" };
        var runRoot = new Option<string>("--run-root") { Description = $"Shared folder for checkpoints and stage outputs (env {EnvironmentVariables.RunRoot})" };
        var cmd = new Command("node", "Run one DistTrain cluster node.") { roles, host, publicHost, port, seeds, devices, runRoot };
        cmd.SetAction(async (parse, ct) =>
        {
            NodeSettings settings;
            try
            {
                settings = Settings(parse.GetValue(roles), parse.GetValue(host), parse.GetValue(publicHost), parse.GetValue(port),
                    parse.GetValue(seeds), parse.GetValue(devices), parse.GetValue(runRoot));
                settings.Validate();
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"disttrain node: {e.Message}");
                return 2;
            }
            using var host_ = NodeComposition.Build(settings);
            await host_.RunAsync(ct);
            return 0;
        });
        return cmd;
    }

    /// <summary>Merges flags over environment variables over defaults.</summary>
    public static NodeSettings Settings(string? roles, string? host, string? publicHost, int? port, string? seeds, string? devices, string? runRoot)
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        static string[] List(string? s) => (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string? portText = Env(EnvironmentVariables.Port);
        int resolvedPort = port ?? (portText is null ? 4053 : int.TryParse(portText, out int p) ? p
            : throw new ArgumentException($"{EnvironmentVariables.Port}='{portText}' is not a port number"));
        string threadsText = Env(EnvironmentVariables.TorchThreads) ?? "0";
        if (!int.TryParse(threadsText, out int threads) || threads < 0)
            throw new ArgumentException($"{EnvironmentVariables.TorchThreads}='{threadsText}' is not a thread count");
        return new NodeSettings(
            Roles: List(roles ?? Env(EnvironmentVariables.Roles) ?? "coordinator,worker"),
            Host: host ?? Env(EnvironmentVariables.Host) ?? "127.0.0.1",
            Port: resolvedPort,
            Seeds: List(seeds ?? Env(EnvironmentVariables.Seeds)),
            Devices: List(devices ?? Env(EnvironmentVariables.Devices) ?? "cpu"),
            RunRoot: Path.GetFullPath(runRoot ?? Env(EnvironmentVariables.RunRoot) ?? "runs"),
            PublicHost: publicHost ?? Env(EnvironmentVariables.PublicHost),
            TorchThreads: threads);
    }
}
