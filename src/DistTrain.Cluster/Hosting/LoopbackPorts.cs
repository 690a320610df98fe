using System.Net;
using System.Net.Sockets;

namespace DistTrain.Cluster.Hosting;

/// <summary>Free TCP ports on 127.0.0.1 for nodes started on one machine (local clusters, tests).</summary>
public static class LoopbackPorts
{
    private const int MaxProbes = 64;
    private static readonly HashSet<int> Given = new();

    /// <summary>
    /// A port the OS just handed out and released, never one this process was given before: two probes in a row can
    /// get the same released port back, and a node's remoting and API ports would then collide. Another process could
    /// still take it first, so bind it soon.
    /// </summary>
    public static int Free()
    {
        lock (Given)
        {
            for (int probes = 0; probes < MaxProbes; probes++)
            {
                using var probe = new TcpListener(IPAddress.Loopback, 0);
                probe.Start();
                int port = ((IPEndPoint)probe.LocalEndpoint).Port;
                if (Given.Add(port)) return port;
            }
        }
        throw new InvalidOperationException($"the OS offered no port this process had not been given already in {MaxProbes} probes");
    }
}
