using Akka.Actor;
using Akka.Hosting;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DistTrain.Host;

/// <summary>Shape of a cluster on one machine.</summary>
/// <param name="TorchThreads">Torch threads per worker process (0: libtorch's default).</param>
public sealed record LocalClusterOptions(int Workers, string RunRoot, ExecutableCommand Executable, int TorchThreads = 1)
{
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>The bearer token the job API requires; null (local mode) accepts anonymous calls.</summary>
    public string? ApiToken { get; init; }
    /// <summary>The job API's port; 0 picks a free one (see <see cref="LocalCluster.GrpcAddress"/>).</summary>
    public int GrpcPort { get; init; }
    /// <summary>Serve Prometheus <c>/metrics</c> on a free port of every node (see <see cref="LocalCluster.MetricsTargets"/>).</summary>
    public bool ServeMetrics { get; init; }
    /// <summary>Every node's data root (DISTTRAIN_DATA_ROOT), where specs' data paths are read; null: none (built-in corpora only).</summary>
    public string? DataRoot { get; init; }
    /// <summary>Remoting without TLS (<c>DISTTRAIN_CLUSTER_TLS=off</c> on every node): only for <c>bench startup</c>'s comparison.</summary>
    public bool PlaintextRemoting { get; init; }
    /// <summary>Every worker's DISTTRAIN_DATAPLANE_SHARED_MEMORY (ranks on this host exchange gradients through shared memory or loopback TCP); null: the default (on).</summary>
    public bool? SharedMemory { get; init; }
}

/// <summary>
/// A real cluster on loopback: the coordinator node in this process, and one worker node per child process, all
/// joined through Akka.Cluster and talking over real sockets. Disposing it kills every worker process.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly LocalClusterOptions _options;
    private readonly ChildProcesses _workers = new();
    private readonly string _seed;
    // Remoting's mutual TLS: a throw-away CA made for this cluster, and a folder (this user only) of node certificates.
    private readonly LocalCertificateAuthority _authority = LocalCertificateAuthority.Create();
    private readonly string _tlsDirectory = Path.Combine(Path.GetTempPath(), "disttrain-tls-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly List<string> _metricsTargets = new();
    private IHost? _host;

    private LocalCluster(LocalClusterOptions options, int port, int grpcPort)
    {
        _options = options;
        Port = port;
        GrpcPort = grpcPort;
        _seed = $"{(options.PlaintextRemoting ? "akka.tcp" : "akka.ssl.tcp")}://{NodeSettings.SystemName}@127.0.0.1:{port}";
    }

    public int Port { get; }
    /// <summary>The port of the coordinator's gRPC job API (cleartext HTTP/2 on loopback).</summary>
    public int GrpcPort { get; }
    /// <summary>Where <c>disttrain submit|watch … --server</c> and gRPC clients reach this cluster's job API.</summary>
    public string GrpcAddress => $"http://127.0.0.1:{GrpcPort}";
    /// <summary>The coordinator node's services (the job service, the actor system).</summary>
    public IServiceProvider Services => _host?.Services ?? throw new InvalidOperationException("the cluster has not started");
    /// <summary>
    /// Cancelled when the coordinator node stops, e.g. on Ctrl+C or SIGTERM, which Akka handles itself (it runs its
    /// coordinated shutdown and keeps the process alive), so a command serving the cluster must watch this too.
    /// </summary>
    public CancellationToken Stopping => Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
    public IActorRef Coordinator { get; private set; } = ActorRefs.Nobody;
    /// <summary>The job API of the coordinator node (what the gRPC service serves).</summary>
    public IJobService Jobs { get; private set; } = null!;
    public ActorSystem System { get; private set; } = null!;
    public ChildProcesses Workers => _workers;
    public string LogDirectory => Path.Combine(_options.RunRoot, "logs");
    /// <summary><c>host:port</c> of every node's <c>/metrics</c> (coordinator first) when <see cref="LocalClusterOptions.ServeMetrics"/> is set.</summary>
    public IReadOnlyList<string> MetricsTargets => _metricsTargets;

    /// <remarks>When the API port is probed (not chosen), a port taken in between by another process costs a fresh start.</remarks>
    public static Task<LocalCluster> StartAsync(LocalClusterOptions options, CancellationToken ct = default) =>
        options.GrpcPort > 0 ? StartOnceAsync(options, ct) : ApiServer.StartOnFreshPorts(() => StartOnceAsync(options, ct));

    private static async Task<LocalCluster> StartOnceAsync(LocalClusterOptions options, CancellationToken ct)
    {
        var cluster = new LocalCluster(options, LoopbackPorts.Free(), options.GrpcPort > 0 ? options.GrpcPort : LoopbackPorts.Free());
        try
        {
            var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", cluster.Port, [], [], options.RunRoot)
            {
                ClusterTls = options.PlaintextRemoting ? null : cluster._authority.Issue(Path.Combine(cluster._tlsDirectory, "coordinator"), "coordinator"),
                PlaintextRemoting = options.PlaintextRemoting,
                GrpcPort = cluster.GrpcPort,
                ApiToken = options.ApiToken,
                AllowAnonymousApi = options.ApiToken is null,
                MetricsPort = cluster.MetricsPort(),
                DataRoot = options.DataRoot,
            };
            cluster._host = NodeComposition.Build(settings, quietHost: true);
            await cluster._host.StartAsync(ct);
            cluster.System = cluster._host.Services.GetRequiredService<ActorSystem>();
            cluster.Coordinator = await ActorRegistry.For(cluster.System).GetAsync<CoordinatorProxyKey>(ct);
            cluster.Jobs = cluster._host.Services.GetRequiredService<IJobService>();
            for (int i = 0; i < options.Workers; i++) cluster.AddWorker();
            await cluster.WaitForWorkersAsync(options.Workers, options.StartTimeout, ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one more worker process (it joins and registers by itself).</summary>
    public void AddWorker()
    {
        int i = _workers.Count;
        var psi = _options.Executable.StartInfo(["node", "--roles", Roles.Worker, "--host", "127.0.0.1", "--port", LoopbackPorts.Free().ToString(),
            "--seeds", _seed, "--devices", "cpu", "--run-root", _options.RunRoot, "--metrics-port", MetricsPort().ToString()]);
        psi.Environment[EnvironmentVariables.TorchThreads] = _options.TorchThreads.ToString();
        foreach (var variable in EnvironmentVariables.All.Where(v => v.StartsWith("DISTTRAIN_CLUSTER_TLS", StringComparison.Ordinal)))
            psi.Environment.Remove(variable);
        if (_options.PlaintextRemoting) psi.Environment[EnvironmentVariables.ClusterTls] = "off";
        else
            foreach (var (name, value) in _authority.Issue(Path.Combine(_tlsDirectory, $"worker-{i}"), $"worker-{i}").Environment())
                psi.Environment[name] = value;
        if (_options.SharedMemory is { } shm) psi.Environment[EnvironmentVariables.DataPlaneSharedMemory] = shm ? "on" : "off";
        if (_options.DataRoot is { } data) psi.Environment[EnvironmentVariables.DataRoot] = data;
        else psi.Environment.Remove(EnvironmentVariables.DataRoot);
        _workers.Start(psi, $"worker-{i}", Path.Combine(LogDirectory, $"worker-{i}.log"));
    }

    /// <summary>Waits until the coordinator has <paramref name="count"/> registered workers; fails with the reason after the timeout.</summary>
    public async Task<WorkersSnapshot> WaitForWorkersAsync(int count, TimeSpan timeout, CancellationToken ct = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        WorkersSnapshot snapshot = new([]);
        while (DateTime.UtcNow < deadline)
        {
            snapshot = await Coordinator.Ask<WorkersSnapshot>(GetWorkers.Instance, TimeSpan.FromSeconds(10), ct);
            if (snapshot.Workers.Count >= count) return snapshot;
            var exited = _workers.Exited().ToList();
            if (exited.Count > 0) throw new InvalidOperationException($"worker process failed to start: {string.Join("; ", exited)} (logs: {LogDirectory})");
            await Task.Delay(250, ct);   // polling an external process's registration: there is no event to wait on
        }
        throw new TimeoutException($"{snapshot.Workers.Count} of {count} workers registered within {timeout.TotalSeconds:F0} s (logs: {LogDirectory})");
    }

    /// <summary>A free port for the next node's metrics, or 0 (off): two nodes on one host cannot share the default port.</summary>
    private int MetricsPort()
    {
        if (!_options.ServeMetrics) return 0;
        int port = LoopbackPorts.Free();
        _metricsTargets.Add($"127.0.0.1:{port}");
        return port;
    }


    public async ValueTask DisposeAsync()
    {
        // The coordinator leaves first, while its workers can still acknowledge; leaving a cluster of dead
        // members would wait out every shutdown phase's timeout. Then every worker process is killed.
        if (_host is not null)
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try { await _host.StopAsync(stop.Token); } catch (OperationCanceledException) { }
            _host.Dispose();
        }
        _workers.Dispose();
        _authority.Dispose();
        try { Directory.Delete(_tlsDirectory, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
