using Grpc.Core;
using Grpc.Net.Client;

namespace DistTrain.Api.Client;

/// <summary>How clients (the CLI, tests, tools) reach a job API: an address, an optional bearer token, optional TLS trust.</summary>
public static class ApiChannel
{
    public const string DefaultServer = "http://127.0.0.1:50051";

    /// <param name="server"><c>http://host:port</c> (cleartext HTTP/2) or <c>https://host:port</c> (TLS).</param>
    /// <param name="token">Sent as <c>authorization: Bearer TOKEN</c> on every call; null sends none.</param>
    /// <param name="handler">Custom HTTP handler, e.g. one trusting a private CA (tests); null uses the system's trust.</param>
    public static GrpcChannel Create(string server, string? token, HttpMessageHandler? handler = null)
    {
        if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"'{server}' is not a server address (http://host:port or https://host:port)");
        var options = new GrpcChannelOptions
        {
            HttpHandler = handler ?? new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), EnableMultipleHttp2Connections = true },
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        };
        if (!string.IsNullOrEmpty(token))
        {
            options.Credentials = ChannelCredentials.Create(
                uri.Scheme == "https" ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
                CallCredentials.FromInterceptor((_, metadata) => { metadata.Add("authorization", "Bearer " + token); return Task.CompletedTask; }));
            // A token over cleartext is only as safe as the network: fine on loopback and inside a cluster's
            // network, otherwise use https (docs/api.md).
            options.UnsafeUseInsecureChannelCallCredentials = uri.Scheme == "http";
        }
        return GrpcChannel.ForAddress(uri, options);
    }

    /// <summary>True when a token would cross a network in clear text (http:// to a host that is not loopback).</summary>
    public static bool SendsTokenInClear(string server, string? token) =>
        !string.IsNullOrEmpty(token) && Uri.TryCreate(server, UriKind.Absolute, out var uri) && uri.Scheme == "http" && !uri.IsLoopback;
}
