using System.Net;
using System.Net.Sockets;

namespace DistTrain.Cluster.Hosting;

/// <summary>Free TCP ports on 127.0.0.1 for nodes started on one machine (local clusters, tests).</summary>
public static class LoopbackPorts
{
    /// <summary>A port the OS just handed out and released; another process could take it first, so bind it soon.</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
