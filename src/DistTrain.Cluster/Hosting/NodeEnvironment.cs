using DistTrain.Cluster.Security;
using DistTrain.Collective.Wire;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// Every <c>DISTTRAIN_*</c> variable the node, `disttrain local` and the API client commands read, read here and
/// nowhere else (names: <see cref="EnvironmentVariables"/>; reference: docs/configuration.md). Each value is parsed and
/// checked once, with an error that names the variable; the rest of the program receives typed settings
/// (<see cref="NodeSettings"/>, the client's address and token). Unset and empty are the same: not set.
/// </summary>
/// <remarks>
/// Three variables are read where they act, and say why there: <c>DISTTRAIN_FAULTS</c> (chaos tests switch it per
/// test in a running process; <c>FaultInjection</c>), <c>DISTTRAIN_DATA_CACHE</c> (every process that prepares data, the
/// in-process <c>disttrain run</c> too; <c>DataCatalog</c>) and <c>DISTTRAIN_CACHE</c> (`disttrain data fetch`;
/// <c>DataCache</c>), whose projects sit below this one.
/// </remarks>
public sealed record NodeEnvironment
{
    public string? Roles { get; init; }
    public string? Host { get; init; }
    public string? PublicHost { get; init; }
    public int? Port { get; init; }
    public string? Seeds { get; init; }
    public string? Devices { get; init; }
    public string? RunRoot { get; init; }
    public string? DataRoot { get; init; }
    public int TorchThreads { get; init; }
    public int? GrpcPort { get; init; }
    public int? MetricsPort { get; init; }
    public int? ManagementPort { get; init; }
    public string? JobStore { get; init; }
    public string? ApiToken { get; init; }
    public string? ApiTokenFile { get; init; }
    public TimeSpan? ApiTokenGrace { get; init; }
    public TimeSpan? RejoinWithoutCoordinator { get; init; }
    public FrameIntegrity? DataPlaneIntegrity { get; init; }
    public bool? DataPlaneSharedMemory { get; init; }
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    public string? Discovery { get; init; }
    public ClusterTlsFiles? ClusterTls { get; init; }
    public bool PlaintextRemoting { get; init; }

    /// <summary>This process's environment, as `disttrain node` reads it.</summary>
    public static NodeEnvironment Read() => Read(Environment.GetEnvironmentVariable);

    /// <summary>
    /// What the API client commands read: the job API's address (<c>DISTTRAIN_SERVER</c>) and bearer token
    /// (<c>DISTTRAIN_TOKEN</c>). Only these: a client must not fail on a node variable it does not use.
    /// </summary>
    public static (string? Server, string? Token) ReadClient() =>
        (Text(Environment.GetEnvironmentVariable, EnvironmentVariables.Server), Text(Environment.GetEnvironmentVariable, EnvironmentVariables.Token));

    /// <summary>What `disttrain local` reads: the data root its nodes share (its worker nodes read the rest themselves).</summary>
    public static string? ReadDataRoot() => Text(Environment.GetEnvironmentVariable, EnvironmentVariables.DataRoot);

    private static string? Text(Func<string, string?> lookup, string name) => lookup(name) is { Length: > 0 } v ? v : null;

    /// <summary>Reads and checks every variable through <paramref name="lookup"/>; a malformed value is an <see cref="ArgumentException"/> naming it.</summary>
    public static NodeEnvironment Read(Func<string, string?> lookup)
    {
        string? Text(string name) => NodeEnvironment.Text(lookup, name);
        TimeSpan? Seconds(string name) => Text(name) is not { } text ? null
            : int.TryParse(text, out int s) && s >= 0 ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"{name} must be a whole number of seconds ≥ 0, got '{text}'");
        int? Port(string name) => Text(name) is not { } text ? null
            : int.TryParse(text, out int p) ? p : throw new ArgumentException($"{name}='{text}' is not a port number");
        return new NodeEnvironment
        {
            Roles = Text(EnvironmentVariables.Roles),
            Host = Text(EnvironmentVariables.Host),
            PublicHost = Text(EnvironmentVariables.PublicHost),
            Port = Port(EnvironmentVariables.Port),
            Seeds = Text(EnvironmentVariables.Seeds),
            Devices = Text(EnvironmentVariables.Devices),
            RunRoot = Text(EnvironmentVariables.RunRoot),
            DataRoot = Text(EnvironmentVariables.DataRoot),
            TorchThreads = Text(EnvironmentVariables.TorchThreads) is not { } threads ? 0
                : int.TryParse(threads, out int t) && t >= 0 ? t
                : throw new ArgumentException($"{EnvironmentVariables.TorchThreads}='{threads}' is not a thread count"),
            GrpcPort = Port(EnvironmentVariables.GrpcPort),
            MetricsPort = Port(EnvironmentVariables.MetricsPort),
            ManagementPort = Port(EnvironmentVariables.ManagementPort),
            JobStore = Text(EnvironmentVariables.JobStore),
            ApiToken = Text(EnvironmentVariables.ApiToken),
            ApiTokenFile = Text(EnvironmentVariables.ApiTokenFile),
            ApiTokenGrace = Seconds(EnvironmentVariables.ApiTokenGrace),
            RejoinWithoutCoordinator = Seconds(EnvironmentVariables.RejoinWithoutCoordinator),
            DataPlaneIntegrity = Text(EnvironmentVariables.DataPlaneIntegrity) is { } integrity ? FrameIntegrities.Parse(integrity) : null,
            DataPlaneSharedMemory = Text(EnvironmentVariables.DataPlaneSharedMemory) switch
            {
                null => null,
                "on" => true,
                "off" => false,
                var v => throw new ArgumentException($"{EnvironmentVariables.DataPlaneSharedMemory}='{v}': on or off"),
            },
            TlsCertificate = Text(EnvironmentVariables.TlsCertificate),
            TlsKey = Text(EnvironmentVariables.TlsKey),
            Discovery = Text(EnvironmentVariables.Discovery),
            ClusterTls = ClusterTlsFrom(Text),
            PlaintextRemoting = Text(EnvironmentVariables.ClusterTls) switch
            {
                null or "on" => false,
                "off" => true,
                var v => throw new ArgumentException($"{EnvironmentVariables.ClusterTls}='{v}': on or off"),
            },
        };
    }

    /// <summary>Remoting's certificate files; null when none of them is set, an error when only some are.</summary>
    private static ClusterTlsFiles? ClusterTlsFrom(Func<string, string?> text)
    {
        string? cert = text(EnvironmentVariables.ClusterTlsCertificate), key = text(EnvironmentVariables.ClusterTlsKey),
            ca = text(EnvironmentVariables.ClusterTlsAuthority), crl = text(EnvironmentVariables.ClusterTlsRevocationList),
            password = text(EnvironmentVariables.ClusterTlsPassword);
        if (cert is null && key is null && ca is null && crl is null) return null;
        if (cert is null || ca is null)
            throw new ArgumentException($"cluster TLS needs {EnvironmentVariables.ClusterTlsCertificate} and {EnvironmentVariables.ClusterTlsAuthority} (and {EnvironmentVariables.ClusterTlsKey} for a PEM certificate)");
        return new ClusterTlsFiles(cert, key, ca, crl, password);
    }
}
