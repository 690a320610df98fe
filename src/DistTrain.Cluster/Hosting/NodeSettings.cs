namespace DistTrain.Cluster.Hosting;

/// <summary>The cluster roles a node can hold; one process may hold both.</summary>
public static class Roles
{
    public const string Coordinator = "coordinator";
    public const string Worker = "worker";
    public static readonly string[] All = [Coordinator, Worker];
}

/// <summary>
/// Every environment variable a DistTrain node reads, in one place. Kubernetes manifests and docs are
/// checked against this list.
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
    public static readonly string[] All = [Roles, Host, PublicHost, Port, Seeds, Devices, RunRoot, DataRoot, TorchThreads];
}

/// <summary>How one node joins the cluster and what it owns.</summary>
/// <param name="Seeds">Akka addresses of seed nodes, e.g. <c>akka.tcp://disttrain@127.0.0.1:4053</c>; empty makes this node the first seed.</param>
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
    public const string SystemName = "disttrain";

    public bool IsCoordinator => Roles.Contains(Hosting.Roles.Coordinator);
    public bool IsWorker => Roles.Contains(Hosting.Roles.Worker);
    public string AdvertisedHost => PublicHost ?? Host;
    public string Address => $"akka.tcp://{SystemName}@{AdvertisedHost}:{Port}";

    /// <summary>Rejects settings that cannot work, with the reason.</summary>
    public void Validate()
    {
        if (Roles.Count == 0) throw new ArgumentException("a node needs at least one role (coordinator, worker)");
        foreach (var r in Roles)
            if (!Hosting.Roles.All.Contains(r)) throw new ArgumentException($"unknown role '{r}' (coordinator, worker)");
        if (Port is < 0 or > 65535) throw new ArgumentException($"port {Port} outside 0..65535");
        if (IsWorker && Devices.Count == 0) throw new ArgumentException("a worker node needs at least one device (cpu or cuda:N)");
        foreach (var d in Devices)
            if (d != "cpu" && !(d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d[5..], out int n) && n >= 0))
                throw new ArgumentException($"unknown device '{d}' (cpu, cuda:N)");
        if (Devices.Distinct().Count() != Devices.Count) throw new ArgumentException("a device is listed twice");
    }
}
