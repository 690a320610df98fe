using Grpc.Core;
using Grpc.Core.Interceptors;

namespace DistTrain.Api.Security;

/// <summary>
/// Requires <c>authorization: Bearer TOKEN</c> on every call but health checks (probes carry no secrets), when a
/// token is configured; which tokens are valid at this moment is <see cref="ApiTokenSource"/>'s call (rotation, grace).
/// </summary>
public sealed class BearerTokenInterceptor(ApiTokenSource tokens) : Interceptor
{
    /// <summary>Methods of this service are open to everyone (Kubernetes gRPC probes, load balancers).</summary>
    public const string OpenService = "/grpc.health.v1.Health/";

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
        if (!tokens.Required || context.Method.StartsWith(OpenService, StringComparison.Ordinal)) return;
        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null)
            throw new RpcException(new Status(StatusCode.Unauthenticated, "missing bearer token (metadata authorization: Bearer TOKEN)"));
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            || !tokens.Accepts(header[scheme.Length..].Trim()))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "invalid bearer token"));
    }
}
