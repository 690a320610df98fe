using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace DistTrain.Api.Security;

/// <summary>The token the job API requires; absent in local mode (anonymous calls allowed).</summary>
public sealed record ApiToken(string? Value);

/// <summary>
/// Requires <c>authorization: Bearer TOKEN</c> on every call but health checks (probes carry no secrets), when a
/// token is configured. Tokens are compared in constant time over their SHA-256 digests, so neither the content
/// nor the length of the expected token leaks through timing.
/// </summary>
public sealed class BearerTokenInterceptor(ApiToken token) : Interceptor
{
    /// <summary>Methods of this service are open to everyone (Kubernetes gRPC probes, load balancers).</summary>
    public const string OpenService = "/grpc.health.v1.Health/";

    private readonly byte[]? _expected = token.Value is null ? null : Digest(token.Value);

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        if (_expected is null || context.Method.StartsWith(OpenService, StringComparison.Ordinal)) return;
        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null)
            throw new RpcException(new Status(StatusCode.Unauthenticated, "missing bearer token (metadata authorization: Bearer TOKEN)"));
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            || !CryptographicOperations.FixedTimeEquals(Digest(header[scheme.Length..].Trim()), _expected))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "invalid bearer token"));
    }

    private static byte[] Digest(string s) => SHA256.HashData(Encoding.UTF8.GetBytes(s));
}
