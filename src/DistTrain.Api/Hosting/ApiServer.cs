using System.Net;
using System.Security.Cryptography.X509Certificates;
using DistTrain.Api.Security;
using DistTrain.Api.Services;
using DistTrain.Cluster.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace DistTrain.Api.Hosting;

/// <summary>
/// The job API on a coordinator node: Kestrel serving gRPC over HTTP/2 (cleartext h2c, or TLS when a certificate
/// and key are configured), the Jobs service, gRPC health checking and server reflection, bearer-token auth.
/// </summary>
public static class ApiServer
{
    /// <summary>Largest request accepted; job specs are a few KiB (and at most 256 KiB, see SpecLimits).</summary>
    public const int MaxReceiveMessageBytes = 1024 * 1024;

    /// <summary>The name health checks report the Jobs service under (its fully qualified proto name).</summary>
    public const string JobsServiceName = "disttrain.v1.Jobs";

    public static WebApplicationBuilder AddJobApi(this WebApplicationBuilder builder, NodeSettings settings)
    {
        settings.Validate();   // refuses a token-less API outside local mode, and half a TLS configuration
        X509Certificate2? certificate = settings.TlsCertificate is { } cert ? LoadCertificate(cert, settings.TlsKey!) : null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = MaxReceiveMessageBytes + 1024;
            Listen(kestrel, settings.Host, settings.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (certificate is not null) listen.UseHttps(certificate);
            });
        });
        var tokens = Tokens(settings);   // now, so a missing or empty token file stops the start with its reason
        builder.Services.AddSingleton(_ => tokens);   // registered by factory, so the host disposes it (its poll timer)
        builder.Services.AddSingleton<BearerTokenInterceptor>();
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = MaxReceiveMessageBytes;
            o.Interceptors.Add<BearerTokenInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddHealthChecks().AddCheck<CoordinatorHealthCheck>("coordinator", tags: ["jobs"]);
        builder.Services.AddGrpcHealthChecks(o =>
        {
            o.Services.Map(JobsServiceName, r => r.Tags.Contains("jobs"));
            o.Services.Map("", _ => true);
        });
        return builder;
    }

    public static WebApplication MapJobApi(this WebApplication app)
    {
        app.UseMiddleware<RequestFrameGuard>();   // malformed bodies: INVALID_ARGUMENT with a position, before grpc-dotnet reads them
        app.MapGrpcService<JobsService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
    }

    /// <summary>
    /// Runs <paramref name="start"/> again, at most <paramref name="attempts"/> times in all, when Kestrel finds its port
    /// taken. For nodes whose ports were probed with <see cref="LoopbackPorts.Free"/>: such a port is free only until
    /// another process binds it, so each attempt must probe fresh ports. Never for a port the user chose.
    /// </summary>
    public static async Task<T> StartOnFreshPorts<T>(Func<Task<T>> start, int attempts = 3)
    {
        for (int attempt = 1; ; attempt++)
        {
            try { return await start(); }
            catch (IOException e) when (attempt < attempts && e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException) { }
        }
    }

    /// <summary>The token source the settings ask for: a file re-read on change, a fixed token, or none (local mode).</summary>
    public static ApiTokenSource Tokens(NodeSettings settings) =>
        settings.ApiTokenFile is { } file ? ApiTokenSource.FromFile(file, settings.ApiTokenGrace, settings.ApiTokenPoll)
        : string.IsNullOrEmpty(settings.ApiToken) ? ApiTokenSource.Anonymous()
        : ApiTokenSource.Fixed(settings.ApiToken);

    /// <summary>PEM certificate and key, as Kubernetes TLS Secrets and cert-manager write them.</summary>
    public static X509Certificate2 LoadCertificate(string certificatePath, string keyPath)
    {
        try { return X509Certificate2.CreateFromPemFile(certificatePath, keyPath); }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot load the TLS certificate {certificatePath} with key {keyPath}: {e.Message}", e);
        }
    }

    /// <summary>Binds like the node's remoting: an IP address, <c>0.0.0.0</c> for every interface, or a host name.</summary>
    private static void Listen(KestrelServerOptions kestrel, string host, int port, Action<ListenOptions> configure)
    {
        if (host is "localhost") kestrel.ListenLocalhost(port, configure);
        else if (IPAddress.TryParse(host, out var ip)) kestrel.Listen(ip, port, configure);
        else kestrel.ListenAnyIP(port, configure);
    }
}
