namespace DistTrain.Cluster.Hosting;

/// <summary>The cluster roles a node can hold; one process may hold both.</summary>
public static class Roles
{
    public const string Coordinator = "coordinator";
    public const string Worker = "worker";
    public static readonly string[] All = [Coordinator, Worker];
}

/// <summary>
/// The names of every environment variable DistTrain reads, in one place; <see cref="NodeEnvironment"/> reads them.
/// Kubernetes manifests are checked against <see cref="All"/> (the node's), docs against every list.
/// </summary>
public static class EnvironmentVariables
{
    public const string Roles = "DISTTRAIN_ROLES";
    public const string Host = "DISTTRAIN_HOST";
    public const string PublicHost = "DISTTRAIN_PUBLIC_HOST";
    public const string Port = "DISTTRAIN_PORT";
    public const string Seeds = "DISTTRAIN_SEEDS";
    public const string Devices = "DISTTRAIN_DEVICES";
    public const string RunRoot = "DISTTRAIN_RUN_ROOT";
    public const string DataRoot = "DISTTRAIN_DATA_ROOT";
    public const string TorchThreads = "DISTTRAIN_TORCH_THREADS";
    /// <summary>Port of the gRPC job API on coordinator-role nodes (0: off).</summary>
    public const string GrpcPort = "DISTTRAIN_GRPC_PORT";
    /// <summary>Port of the Prometheus <c>/metrics</c> endpoint on every node (0: off).</summary>
    public const string MetricsPort = "DISTTRAIN_METRICS_PORT";
    /// <summary>Port of Akka.Management (<c>/ready</c>, <c>/alive</c>, cluster bootstrap) (0: off).</summary>
    public const string ManagementPort = "DISTTRAIN_MANAGEMENT_PORT";
    /// <summary>Where job state persists: <c>sqlite:PATH</c> or <c>postgresql:CONNECTION-STRING</c>.</summary>
    public const string JobStore = "DISTTRAIN_JOB_STORE";
    /// <summary>The bearer token the job API requires (a Kubernetes Secret in a cluster).</summary>
    public const string ApiToken = "DISTTRAIN_API_TOKEN";
    /// <summary>A file holding the bearer token (a mounted Kubernetes Secret), re-read when it changes; instead of DISTTRAIN_API_TOKEN.</summary>
    public const string ApiTokenFile = "DISTTRAIN_API_TOKEN_FILE";
    /// <summary>Tag on every gradient frame: aes-gmac (default), hmac-sha256 or none; every node of a cluster must agree.</summary>
    public const string DataPlaneIntegrity = "DISTTRAIN_DATAPLANE_INTEGRITY";
    /// <summary><c>on</c> (default) or <c>off</c>: ranks that share /dev/shm (one host, one pod) send gradients through shared memory instead of loopback TCP.</summary>
    public const string DataPlaneSharedMemory = "DISTTRAIN_DATAPLANE_SHARED_MEMORY";
    /// <summary>Seconds the previous token stays valid after the token file changes (default 300; 0 refuses it at once).</summary>
    public const string ApiTokenGrace = "DISTTRAIN_API_TOKEN_GRACE";
    /// <summary>PEM certificate and key files; both set turns TLS on for the job API.</summary>
    public const string TlsCertificate = "DISTTRAIN_TLS_CERT";
    public const string TlsKey = "DISTTRAIN_TLS_KEY";
    /// <summary>How a node finds the cluster: <c>seeds</c> (DISTTRAIN_SEEDS) or <c>kubernetes</c> (Akka.Management bootstrap).</summary>
    public const string Discovery = "DISTTRAIN_DISCOVERY";
    /// <summary>Remoting's mutual TLS (docs/security.md): this node's certificate, PEM or PKCS#12 (<c>tls.crt</c> of a cert-manager Secret).</summary>
    public const string ClusterTlsCertificate = "DISTTRAIN_CLUSTER_TLS_CERT";
    /// <summary>The PEM private key of that certificate (<c>tls.key</c>); unset for PKCS#12.</summary>
    public const string ClusterTlsKey = "DISTTRAIN_CLUSTER_TLS_KEY";
    /// <summary>The PEM CA bundle peers' certificates must chain to (<c>ca.crt</c>).</summary>
    public const string ClusterTlsAuthority = "DISTTRAIN_CLUSTER_TLS_CA";
    /// <summary>Optional CRL (PEM or DER) from that CA: the certificates it lists are refused; re-read when it changes.</summary>
    public const string ClusterTlsRevocationList = "DISTTRAIN_CLUSTER_TLS_CRL";
    /// <summary>Optional password of a PKCS#12 certificate file.</summary>
    public const string ClusterTlsPassword = "DISTTRAIN_CLUSTER_TLS_PASSWORD";
    /// <summary><c>off</c>: plaintext remoting that anyone who reaches the port can join; only for a trusted, isolated network.</summary>
    public const string ClusterTls = "DISTTRAIN_CLUSTER_TLS";
    /// <summary>
    /// Seconds a node without the coordinator role stays in a cluster that has no coordinator-role member before it leaves
    /// and rejoins through its seeds (default 60; 0: never). See <see cref="CoordinatorWatch"/>.
    /// </summary>
    public const string RejoinWithoutCoordinator = "DISTTRAIN_REJOIN_WITHOUT_COORDINATOR";
    /// <summary>The job API address the client commands (submit, jobs, status, watch, cancel, workers) call.</summary>
    public const string Server = "DISTTRAIN_SERVER";
    /// <summary>The bearer token the client commands send.</summary>
    public const string Token = "DISTTRAIN_TOKEN";

    /// <summary>What a node reads.</summary>
    public static readonly string[] All = [Roles, Host, PublicHost, Port, Seeds, Devices, RunRoot, DataRoot, TorchThreads,
        GrpcPort, MetricsPort, ManagementPort, JobStore, ApiToken, ApiTokenFile, ApiTokenGrace, DataPlaneIntegrity, DataPlaneSharedMemory, TlsCertificate, TlsKey, Discovery,
        ClusterTlsCertificate, ClusterTlsKey, ClusterTlsAuthority, ClusterTlsRevocationList, ClusterTlsPassword, ClusterTls, RejoinWithoutCoordinator];
    /// <summary>What the client commands read.</summary>
    public static readonly string[] Client = [Server, Token];
}

/// <summary>The ports a node listens on by default; manifests and docs are checked against these.</summary>
public static class DefaultPorts
{
    public const int Remoting = 4053;
    public const int Grpc = 50051;
    public const int Metrics = 9464;
    public const int Management = 8558;
}

/// <summary>How one node joins the cluster and what it owns.</summary>
/// <param name="Seeds">Akka addresses of seed nodes, e.g. <c>akka.ssl.tcp://disttrain@127.0.0.1:4053</c> (<c>akka.tcp://</c> with plaintext remoting); empty makes this node the first seed.</param>
/// <param name="Devices">Devices this node's workers own: <c>cpu</c>, or <c>cuda:0,cuda:1,…</c>; one worker actor per device.</param>
/// <param name="RunRoot">Shared storage for checkpoints and stage outputs.</param>
public sealed record NodeSettings(
    IReadOnlyList<string> Roles,
    string Host,
    int Port,
    IReadOnlyList<string> Seeds,
    IReadOnlyList<string> Devices,
    string RunRoot,
    string? PublicHost = null,
    int TorchThreads = 0)
{
    /// <summary>gRPC job API port on coordinator nodes; 0 serves no API.</summary>
    public int GrpcPort { get; init; }
    /// <summary>Prometheus <c>/metrics</c> port; 0 serves no metrics endpoint.</summary>
    public int MetricsPort { get; init; }
    /// <summary>Akka.Management port (<c>/ready</c>, <c>/alive</c>); 0 runs no management endpoint.</summary>
    public int ManagementPort { get; init; }
    /// <summary><c>sqlite:PATH</c> or <c>postgresql:CONNECTION-STRING</c>; null keeps job state in <c>RUN_ROOT/jobs.db</c> (SQLite).</summary>
    public string? JobStore { get; init; }
    /// <summary>Bearer token the job API requires; null with <see cref="AllowAnonymousApi"/> false refuses to start the API.</summary>
    public string? ApiToken { get; init; }
    /// <summary>File the bearer token is read from and re-read every <see cref="ApiTokenPoll"/>; excludes <see cref="ApiToken"/>.</summary>
    public string? ApiTokenFile { get; init; }
    /// <summary>How long the previous token from <see cref="ApiTokenFile"/> stays valid after a change.</summary>
    public TimeSpan ApiTokenGrace { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How often <see cref="ApiTokenFile"/> is re-read.</summary>
    public TimeSpan ApiTokenPoll { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How gradient frames are tagged on the data plane (<see cref="EnvironmentVariables.DataPlaneIntegrity"/>).</summary>
    public DistTrain.Collective.Wire.FrameIntegrity DataPlaneIntegrity { get; init; } = new DistTrain.Collective.DataPlaneOptions().Integrity;
    /// <summary>Whether co-located ranks use shared memory for gradient frames (<see cref="EnvironmentVariables.DataPlaneSharedMemory"/>).</summary>
    public bool DataPlaneSharedMemory { get; init; } = new DistTrain.Collective.DataPlaneOptions().SharedMemory;
    /// <summary>Local mode (demo, tests on loopback): the job API accepts calls without a token.</summary>
    public bool AllowAnonymousApi { get; init; }
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    /// <summary><c>seeds</c> or <c>kubernetes</c>.</summary>
    public string Discovery { get; init; } = "seeds";

    /// <summary>
    /// Set only on a rejoining founder (<see cref="RejoinPolicy.RejoinSettings"/>): it lists itself first and forms a new
    /// cluster only when every other seed answers that it is in none, never after a timeout (Akka's
    /// <c>seed-node-timeout</c>, which this raises past any run). Null keeps Akka's default.
    /// </summary>
    public TimeSpan? SeedNodeTimeout { get; init; }

    /// <summary>
    /// Remoting's mutual-TLS files (<c>DISTTRAIN_CLUSTER_TLS_*</c>); a node without them refuses to start unless
    /// <see cref="PlaintextRemoting"/> says otherwise. Local clusters make their own (<see cref="Security.LocalCertificateAuthority"/>).
    /// </summary>
    public Security.ClusterTlsFiles? ClusterTls { get; init; }
    /// <summary><c>DISTTRAIN_CLUSTER_TLS=off</c>: remoting in plaintext, joinable by anything that reaches the port.</summary>
    public bool PlaintextRemoting { get; init; }

    /// <summary>
    /// How long a node without the coordinator role stays in a cluster with no coordinator-role member before leaving it to
    /// rejoin through its seeds (<see cref="CoordinatorWatch"/>); <see cref="TimeSpan.Zero"/> never leaves.
    /// </summary>
    public TimeSpan RejoinWithoutCoordinator { get; init; } = DefaultRejoinWithoutCoordinator;
    public static readonly TimeSpan DefaultRejoinWithoutCoordinator = TimeSpan.FromSeconds(60);

    /// <summary>This node's data root (<c>DISTTRAIN_DATA_ROOT</c>): specs' data paths are read under it, and the coordinator checks them at submit.</summary>
    public string? DataRoot { get; init; }

    public const string SystemName = "disttrain";
    public const string SeedsDiscovery = "seeds";
    /// <summary>Akka.Management cluster bootstrap through the Kubernetes API (<c>cluster-config/k8s.hocon</c>); needs a management port.</summary>
    public const string KubernetesDiscovery = "kubernetes";

    public bool IsCoordinator => Roles.Contains(Hosting.Roles.Coordinator);
    public bool IsWorker => Roles.Contains(Hosting.Roles.Worker);
    public string AdvertisedHost => PublicHost ?? Host;
    /// <summary>This node's Akka address; TLS remoting's scheme is <c>akka.ssl.tcp</c>, and seeds must use the same.</summary>
    public string Address => $"{Scheme}://{SystemName}@{AdvertisedHost}:{Port}";
    public string Scheme => PlaintextRemoting ? "akka.tcp" : "akka.ssl.tcp";

    /// <summary>Rejects settings that cannot work, with the reason.</summary>
    public void Validate()
    {
        if (Roles.Count == 0) throw new ArgumentException("a node needs at least one role (coordinator, worker)");
        foreach (var r in Roles)
            if (!Hosting.Roles.All.Contains(r)) throw new ArgumentException($"unknown role '{r}' (coordinator, worker)");
        foreach (var (name, value) in new[] { ("port", Port), ("gRPC port", GrpcPort), ("metrics port", MetricsPort), ("management port", ManagementPort) })
            if (value is < 0 or > 65535) throw new ArgumentException($"{name} {value} outside 0..65535");
        var listening = new[] { ("remoting", Port), ("gRPC", IsCoordinator ? GrpcPort : 0), ("metrics", MetricsPort), ("management", ManagementPort) };
        foreach (var shared in listening.Where(p => p.Item2 > 0).GroupBy(p => p.Item2).Where(g => g.Count() > 1))
            throw new ArgumentException($"the {string.Join(" and ", shared.Select(p => p.Item1))} ports are both {shared.Key}: each needs a port of its own");
        if (Discovery is not ("seeds" or "kubernetes")) throw new ArgumentException($"unknown discovery '{Discovery}' (seeds, kubernetes)");
        if (Discovery == KubernetesDiscovery && ManagementPort == 0)
            throw new ArgumentException("kubernetes discovery needs a management port: cluster bootstrap talks to the other pods through Akka.Management");
        if ((TlsCertificate is null) != (TlsKey is null)) throw new ArgumentException("TLS needs both a certificate and a key");
        if (!string.IsNullOrEmpty(ApiToken) && ApiTokenFile is not null)
            throw new ArgumentException($"set either {EnvironmentVariables.ApiToken} or {EnvironmentVariables.ApiTokenFile}, not both");
        if (ApiTokenGrace < TimeSpan.Zero) throw new ArgumentException($"{EnvironmentVariables.ApiTokenGrace} must not be negative");
        if (RejoinWithoutCoordinator < TimeSpan.Zero) throw new ArgumentException($"{EnvironmentVariables.RejoinWithoutCoordinator} must not be negative");
        if (ApiTokenPoll <= TimeSpan.Zero) throw new ArgumentException("the token poll interval must be positive");
        if (IsCoordinator && GrpcPort > 0 && string.IsNullOrEmpty(ApiToken) && ApiTokenFile is null && !AllowAnonymousApi)
            throw new ArgumentException($"the job API needs a bearer token: set {EnvironmentVariables.ApiToken} or {EnvironmentVariables.ApiTokenFile}, or pass --allow-anonymous for local use, or --grpc-port 0 to serve no API");
        if (IsWorker && Devices.Count == 0) throw new ArgumentException("a worker node needs at least one device (cpu or cuda:N)");
        foreach (var d in Devices)
            if (d != "cpu" && !(d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d[5..], out int n) && n >= 0))
                throw new ArgumentException($"unknown device '{d}' (cpu, cuda:N)");
        if (Devices.Distinct().Count() != Devices.Count) throw new ArgumentException("a device is listed twice");
        if (ClusterTls is null && !PlaintextRemoting)
            throw new ArgumentException($"remoting needs the cluster's certificates: set {EnvironmentVariables.ClusterTlsCertificate}, {EnvironmentVariables.ClusterTlsKey} and {EnvironmentVariables.ClusterTlsAuthority} (docs/security.md), or {EnvironmentVariables.ClusterTls}=off for a plaintext cluster that anyone reaching its port can join");
        if (ClusterTls is not null && PlaintextRemoting)
            throw new ArgumentException($"{EnvironmentVariables.ClusterTls}=off and cluster certificates are both set: choose one");
        foreach (var seed in Seeds)
            if (!seed.StartsWith(Scheme + "://", StringComparison.Ordinal))
                throw new ArgumentException($"seed '{seed}' is not a {Scheme}:// address ({(PlaintextRemoting ? "plaintext" : "TLS")} remoting): every node of a cluster must use the same");
    }
}
