using DistTrain.Api.Client;
using DistTrain.Api.V1;
using ApiWorker = DistTrain.Api.V1.Worker;
using JobsClient = DistTrain.Api.V1.Jobs.JobsClient;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;
using Grpc.Core;
using Grpc.Net.Client;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// The cluster the partition tests share: node 0 runs the coordinator role (and the job API), nodes 1–3 one CPU worker
/// each; every node is a real <c>disttrain node</c> process inside its own network namespace (<see cref="NetworkNamespaces"/>),
/// bound to its namespace address, with mutual-TLS remoting as in production. The test reaches the job API over the host
/// link. Disposing kills every process, then deletes the namespaces.
/// </summary>
public sealed class PartitionCluster : IAsyncLifetime
{
    public const int CoordinatorNode = 0;
    public const int Workers = 3;
    /// <summary>Every node's remoting port: each namespace has its own port space.</summary>
    public const int Port = 4053;
    public const int GrpcPort = 50051;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly ChildProcesses _processes = new();
    private readonly LocalCertificateAuthority _authority = LocalCertificateAuthority.Create();
    private GrpcChannel? _channel;

    public NetworkNamespaces Net { get; private set; } = null!;
    public TempDir Root { get; } = new();
    public JobsClient Client { get; private set; } = null!;
    /// <summary>How long each node took to start until 3 workers were registered.</summary>
    public TimeSpan StartedIn { get; private set; }

    public static string Address(int node) => NetworkNamespaces.Address(node);
    public static string AkkaAddress(int node) => $"akka.ssl.tcp://{NodeSettings.SystemName}@{Address(node)}:{Port}";
    /// <summary>The id a worker node registers under (<c>host:port/device</c>).</summary>
    public static string WorkerId(int node) => $"{Address(node)}:{Port}/cpu";
    public string LogOf(int node) => Path.Combine(Root.Path, "logs", $"node-{node}.log");

    public async Task InitializeAsync()
    {
        var started = DateTime.UtcNow;
        try
        {
            Net = NetworkNamespaces.Create(1 + Workers);
            // Every node lists the coordinator first (it forms the cluster) and the first two workers: a node the cluster
            // downs rejoins through any of them but itself (RejoinPolicy.RejoinSettings), the coordinator included.
            string seeds = string.Join(",", new[] { CoordinatorNode, 1, 2 }.Select(AkkaAddress));
            Start(CoordinatorNode, ["--roles", Roles.Coordinator, "--grpc-port", GrpcPort.ToString(), "--allow-anonymous"], seeds);
            for (int node = 1; node <= Workers; node++) Start(node, ["--roles", Roles.Worker, "--devices", "cpu"], seeds);
            _channel = ApiChannel.Create($"http://{Address(CoordinatorNode)}:{GrpcPort}", token: null);
            Client = new JobsClient(_channel);
            await WaitForWorkersAsync(Enumerable.Range(1, Workers).Select(WorkerId).ToList(), StartTimeout);
            StartedIn = DateTime.UtcNow - started;
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private void Start(int node, string[] roleArguments, string seeds)
    {
        var psi = ClusterHarness.Disttrain().StartInfo(["node", .. roleArguments, "--host", Address(node), "--port", Port.ToString(),
            "--seeds", seeds, "--run-root", Root.Path, "--metrics-port", "0"]);
        psi.Environment[EnvironmentVariables.TorchThreads] = "1";
        foreach (var variable in EnvironmentVariables.All.Where(v => v.StartsWith("DISTTRAIN_", StringComparison.Ordinal)).Except([EnvironmentVariables.TorchThreads]))
            psi.Environment.Remove(variable);
        // Rank 0 stalls 3 s after step 14 (and again whenever a group runs that step): the progress the test reacts to
        // reaches it late, and the stall holds the stage mid-epoch, past its step-10 checkpoint, when the cut lands.
        psi.Environment[DistTrain.Training.Engine.FaultInjection.Variable] = "straggle:rank=0:step=14:seconds=3";
        foreach (var (name, value) in _authority.Issue(Path.Combine(Root.Path, "tls", $"node-{node}"), $"node-{node}").Environment())
            psi.Environment[name] = value;
        _processes.Start(Net.Inside(node, psi), $"node-{node}", LogOf(node));
    }

    /// <summary>The coordinator's worker list, or null while its API does not answer (its node restarting, or cut off).</summary>
    public async Task<IReadOnlyList<ApiWorker>?> TryListWorkersAsync()
    {
        try
        {
            var reply = await Client.ListWorkersAsync(new ListWorkersRequest(), deadline: DateTime.UtcNow.AddSeconds(3));
            return reply.Workers;
        }
        catch (RpcException) { return null; }
    }

    /// <summary>Waits until every one of <paramref name="ids"/> is registered, up and idle.</summary>
    public async Task WaitForWorkersAsync(IReadOnlyCollection<string> ids, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        IReadOnlyList<ApiWorker>? seen = null;
        while (DateTime.UtcNow < deadline)
        {
            seen = await TryListWorkersAsync();
            if (seen is not null && ids.All(id => seen.Any(w => w.WorkerId == id && w.Health == "up" && w.JobId == "")))
                return;
            var exited = _processes.Exited().ToList();
            if (exited.Count > 0)
                throw new InvalidOperationException($"node process ended: {string.Join("; ", exited)}; the nodes' last log lines:\n" + LogTails());
            await Task.Delay(250);   // an external cluster's registration: there is no event to wait on
        }
        throw new TimeoutException($"workers {string.Join(", ", ids)} not all up and idle within {timeout.TotalSeconds:F0} s; last seen: " +
            (seen is null ? "no answer" : string.Join(", ", seen.Select(w => $"{w.WorkerId} {w.Health} {w.JobId}/{w.Stage}"))) + "; the nodes' last log lines:\n" + LogTails());
    }

    /// <summary>The last lines of every node's log (the folder goes with the fixture, so a failure carries them).</summary>
    public string LogTails(int lines = 25) => string.Join("\n", Enumerable.Range(0, 1 + Workers).Select(n =>
        $"--- node {n}\n" + string.Join("\n", File.Exists(LogOf(n)) ? File.ReadLines(LogOf(n)).TakeLast(lines) : [])));

    /// <summary>Polls the job until it ends, riding over the API's absence while the coordinator's node restarts.</summary>
    public async Task<JobReply> WaitForJobAsync(string jobId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        JobReply? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await Client.GetJobAsync(new GetJobRequest { JobId = jobId }, deadline: DateTime.UtcNow.AddSeconds(3));
                if (last.State is State.Succeeded or State.Failed or State.Cancelled) return last;
            }
            catch (RpcException) { }
            await Task.Delay(500);   // polling another process's job state
        }
        throw new TimeoutException($"job {jobId} did not end within {timeout.TotalSeconds:F0} s; last: {last} (logs: {Root.Path}/logs)");
    }

    public async Task DisposeAsync()
    {
        _processes.Dispose();   // every node process first: a namespace with processes in it outlives its name
        _channel?.Dispose();
        try { Net?.Dispose(); }
        finally
        {
            _authority.Dispose();
            Root.Dispose();
        }
        await Task.CompletedTask;
    }
}
