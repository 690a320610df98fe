using DistTrain.Host;
using DistTrain.Api.Client;
using DistTrain.Api.Hosting;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;
using Grpc.Net.Client;
using Microsoft.Extensions.Hosting;

namespace DistTrain.Api.Tests.Support;

/// <summary>
/// A real coordinator node on loopback (Akka cluster of one, the job manager with its SQLite journal, Kestrel serving
/// the job API), without workers, so submitted jobs stay queued. Disposing it stops the node and deletes its run folder.
/// </summary>
public sealed class ApiNode : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly string _runRoot;

    private ApiNode(IHost host, string runRoot, NodeSettings settings, bool tls)
    {
        _host = host;
        _runRoot = runRoot;
        Settings = settings;
        Address = $"{(tls ? "https" : "http")}://{(tls ? "localhost" : "127.0.0.1")}:{settings.GrpcPort}";
    }

    public string Address { get; }
    /// <summary>The settings the node runs with (its ports, after <c>configure</c>).</summary>
    public NodeSettings Settings { get; }
    public IServiceProvider Services => _host.Services;

    /// <param name="token">null: local mode (anonymous calls allowed).</param>
    /// <param name="seeds">Seed nodes to join; empty makes this node the first seed.</param>
    /// <param name="configure">Further settings (a token file, say).</param>
    public static Task<ApiNode> StartAsync(string? token = null, string? tlsCertificate = null, string? tlsKey = null, string[]? seeds = null,
        Func<NodeSettings, NodeSettings>? configure = null) =>
        ApiServer.StartOnFreshPorts(() => StartOnceAsync(token, tlsCertificate, tlsKey, seeds, configure));

    private static async Task<ApiNode> StartOnceAsync(string? token, string? tlsCertificate, string? tlsKey, string[]? seeds,
        Func<NodeSettings, NodeSettings>? configure)
    {
        string runRoot = Directory.CreateTempSubdirectory("disttrain-api-").FullName;
        int grpcPort = LoopbackPorts.Free();
        var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", LoopbackPorts.Free(), seeds ?? [], [], runRoot)
        {
            GrpcPort = grpcPort,
            ApiToken = token,
            AllowAnonymousApi = token is null && configure is null,
            TlsCertificate = tlsCertificate,
            TlsKey = tlsKey,
            ClusterTls = LocalTls(runRoot),
        };
        if (configure is not null) settings = configure(settings);
        var host = NodeComposition.Build(settings, quietHost: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await host.StartAsync(timeout.Token);
        }
        catch
        {
            try { await host.StopAsync(CancellationToken.None); } catch (Exception) { }
            host.Dispose();
            Directory.Delete(runRoot, recursive: true);
            throw;
        }
        return new ApiNode(host, runRoot, settings, tlsCertificate is not null);
    }

    /// <summary>Remoting certificates for a node of its own: a throw-away CA (discarded at once) and one node certificate under <paramref name="dir"/>.</summary>
    public static ClusterTlsFiles LocalTls(string dir)
    {
        using var authority = LocalCertificateAuthority.Create();
        return authority.Issue(Path.Combine(dir, "cluster-tls"));
    }

    /// <summary>
    /// Waits until the API reports SERVING (its singletons are up), polling the health service: the singletons start a
    /// moment after the host, and nothing else announces them. Fails with the last status after the timeout.
    /// </summary>
    public async Task WaitUntilServingAsync(HttpMessageHandler? handler = null)
    {
        using var channel = Channel(handler: handler);
        var health = new Grpc.Health.V1.Health.HealthClient(channel);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var status = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Unknown;
        while (DateTime.UtcNow < deadline)
        {
            status = (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = ApiServer.JobsServiceName },
                deadline: DateTime.UtcNow.AddSeconds(10))).Status;
            if (status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving) return;
            await Task.Delay(250);
        }
        throw new TimeoutException($"the job API at {Address} still reports {status} after 60 s");
    }

    public GrpcChannel Channel(string? token = null, HttpMessageHandler? handler = null) => ApiChannel.Create(Address, token, handler);

    public Jobs.JobsClient Client(string? token = null) => new(Channel(token));


    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try { await _host.StopAsync(stop.Token); } catch (OperationCanceledException) { }
        _host.Dispose();
        try { Directory.Delete(_runRoot, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One anonymous (local-mode) node shared by the tests of a collection.</summary>
public sealed class SharedNode : IAsyncLifetime
{
    public ApiNode Node { get; private set; } = null!;
    public async Task InitializeAsync()
    {
        Node = await ApiNode.StartAsync();
        await Node.WaitUntilServingAsync();
    }
    public async Task DisposeAsync() => await Node.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SharedNodeCollection : ICollectionFixture<SharedNode>
{
    public const string Name = "shared node";
}
