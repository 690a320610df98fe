using DistTrain.Api.Client;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;
using Grpc.Core;
using JobsClient = DistTrain.Api.V1.Jobs.JobsClient;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// A worker stranded in a cluster without a coordinator (what a partition's aftermath can leave: CoordinatorWatch) leaves it
/// and rejoins the coordinator's cluster through its seeds. Two real <c>disttrain node</c> processes on 127.0.0.1 with
/// mutual-TLS remoting.
/// </summary>
[Collection("cluster")]
public sealed class CoordinatorWatchTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_worker_alone_in_a_cluster_without_a_coordinator_leaves_it_and_registers_with_the_coordinators_cluster()
    {
        using var root = new TempDir();
        using var authority = LocalCertificateAuthority.Create();
        using var processes = new ChildProcesses();
        int workerPort = LoopbackPorts.Free(), coordinatorPort = LoopbackPorts.Free(), grpcPort = LoopbackPorts.Free();
        string Address(int port) => $"akka.ssl.tcp://{NodeSettings.SystemName}@127.0.0.1:{port}";
        string workerLog = Path.Combine(root.Path, "worker.log");

        // The worker is its own first seed and lists the coordinator second. The coordinator is not running yet, so after
        // Akka's seed-node timeout the worker forms a cluster of its own: Up, alone, with no coordinator to register with.
        var start = DateTime.UtcNow;
        Start(processes, authority, root.Path, "worker", ["--roles", Roles.Worker, "--devices", "cpu"], workerPort,
            $"{Address(workerPort)},{Address(coordinatorPort)}", workerLog, rejoinAfterSeconds: 5);
        await WaitForLineAsync(processes, workerLog, $"moving node [{Address(workerPort)}] to [Up]");
        var alone = DateTime.UtcNow;

        // The coordinator forms its own cluster (it lists only itself): two clusters, and the worker's seeds will not be
        // asked again while it is Up in its own.
        Start(processes, authority, root.Path, "coordinator", ["--roles", Roles.Coordinator, "--grpc-port", grpcPort.ToString(), "--allow-anonymous"],
            coordinatorPort, Address(coordinatorPort), Path.Combine(root.Path, "coordinator.log"), rejoinAfterSeconds: 5);
        using var channel = ApiChannel.Create($"http://127.0.0.1:{grpcPort}", token: null);
        var client = new JobsClient(channel);
        string workerId = $"127.0.0.1:{workerPort}/cpu";
        var deadline = DateTime.UtcNow + Bound;
        IReadOnlyList<DistTrain.Api.V1.Worker>? seen = null;
        while (DateTime.UtcNow < deadline && seen?.Any(w => w.WorkerId == workerId && w.Health == "up") != true)
        {
            Assert.Empty(processes.Exited());
            try { seen = (await client.ListWorkersAsync(new ListWorkersRequest(), deadline: DateTime.UtcNow.AddSeconds(3))).Workers; }
            catch (RpcException) { }
            await Task.Delay(250);   // another process's registration: there is no event to wait on
        }
        var registered = DateTime.UtcNow;
        string log = ReadShared(workerLog);
        output.WriteLine($"worker alone and Up {(alone - start).TotalSeconds:F1} s after its start; registered with the coordinator's cluster " +
            $"{(registered - alone).TotalSeconds:F1} s later");
        Assert.True(seen?.Any(w => w.WorkerId == workerId && w.Health == "up") == true,
            $"the worker never registered with the coordinator within {Bound.TotalSeconds:F0} s; its log:\n{string.Join("\n", log.Split('\n').TakeLast(30))}");
        Assert.Contains("in a cluster without a coordinator for 5 s and left it", log);
    }

    private static void Start(ChildProcesses processes, LocalCertificateAuthority authority, string root, string name, string[] roleArguments,
        int port, string seeds, string logPath, int rejoinAfterSeconds)
    {
        var psi = ClusterHarness.Disttrain().StartInfo(["node", .. roleArguments, "--host", "127.0.0.1", "--port", port.ToString(),
            "--seeds", seeds, "--run-root", root, "--metrics-port", "0"]);
        foreach (var variable in EnvironmentVariables.All) psi.Environment.Remove(variable);
        psi.Environment[EnvironmentVariables.TorchThreads] = "1";
        psi.Environment[EnvironmentVariables.RejoinWithoutCoordinator] = rejoinAfterSeconds.ToString();
        foreach (var (variable, value) in authority.Issue(Path.Combine(root, "tls", name), name).Environment())
            psi.Environment[variable] = value;
        processes.Start(psi, name, logPath);
    }

    private static async Task WaitForLineAsync(ChildProcesses processes, string logPath, string text)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!ReadShared(logPath).Contains(text, StringComparison.Ordinal))
        {
            Assert.Empty(processes.Exited());
            Assert.True(DateTime.UtcNow < deadline, $"'{text}' not in {logPath} within {Bound.TotalSeconds:F0} s:\n{ReadShared(logPath)}");
            await Task.Delay(100);   // another process's log: there is no event to wait on
        }
    }

    private static string ReadShared(string path)
    {
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd();
    }
}
