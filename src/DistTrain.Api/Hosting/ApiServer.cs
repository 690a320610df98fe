using System.Security.Cryptography.X509Certificates;
using DistTrain.Api.Security;
using DistTrain.Api.Services;
using DistTrain.Cluster.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace DistTrain.Api.Hosting;

/// <summary>
/// The job API on a coordinator node: the Jobs service, gRPC health checking and server reflection, bearer-token
/// authentication (<see cref="BearerTokenHandler"/>). Kestrel, its ports and TLS belong to the node's one web host
/// (DistTrain.Host's <c>NodeWebHost</c>), which maps these endpoints on the gRPC port.
/// </summary>
public static class ApiServer
{
    /// <summary>Largest request accepted; job specs are a few KiB (and at most 256 KiB, see SpecLimits).</summary>
    public const int MaxReceiveMessageBytes = 1024 * 1024;

    /// <summary>The name health checks report the Jobs service under (its fully qualified proto name).</summary>
    public const string JobsServiceName = "disttrain.v1.Jobs";

    public static IServiceCollection AddJobApi(this IServiceCollection services, NodeSettings settings)
    {
        settings.Validate();   // refuses a token-less API outside local mode, and half a TLS configuration
        var tokens = Tokens(settings);   // now, so a missing or empty token file stops the start with its reason
        services.AddSingleton(_ => tokens);   // registered by factory, so the host disposes it (its poll timer)
        services.AddAuthentication(BearerTokenHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerTokenHandler>(BearerTokenHandler.SchemeName, null);
        services.AddAuthorization(o => o.AddPolicy(BearerTokenHandler.Policy, p => p.RequireAuthenticatedUser()));
        services.AddGrpc(o => o.MaxReceiveMessageSize = MaxReceiveMessageBytes);
        services.AddGrpcReflection();
        services.AddHealthChecks().AddCheck<CoordinatorHealthCheck>("coordinator", tags: ["jobs"]);
        services.AddGrpcHealthChecks(o =>
        {
            o.Services.Map(JobsServiceName, r => r.Tags.Contains("jobs"));
            o.Services.Map("", _ => true);
        });
        return services;
    }

    /// <summary>
    /// The API's middleware, in order: malformed bodies get INVALID_ARGUMENT with a position before grpc-dotnet reads
    /// them (as before authentication existed as middleware: the check needs no token), then authentication and
    /// authorization. Call after routing, so the authorization middleware sees each request's endpoint.
    /// </summary>
    public static IApplicationBuilder UseJobApi(this IApplicationBuilder app) => app
        .UseMiddleware<RequestFrameGuard>()
        .UseAuthentication()
        .UseAuthorization();

    /// <summary>
    /// The API's endpoints: Jobs and reflection need the bearer token, health checks stay open (Kubernetes gRPC probes,
    /// load balancers). <paramref name="scope"/> is applied to each (the host restricts them to the gRPC port).
    /// </summary>
    public static void MapJobApi(this IEndpointRouteBuilder app, Action<IEndpointConventionBuilder> scope)
    {
        var jobs = app.MapGrpcService<JobsService>().RequireAuthorization(BearerTokenHandler.Policy);
        var reflection = app.MapGrpcReflectionService().RequireAuthorization(BearerTokenHandler.Policy);
        var health = app.MapGrpcHealthChecksService();
        foreach (var endpoints in new IEndpointConventionBuilder[] { jobs, reflection, health }) scope(endpoints);
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
}
