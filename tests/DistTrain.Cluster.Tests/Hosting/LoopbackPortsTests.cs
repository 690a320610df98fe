using System.Net;
using System.Net.Sockets;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Cluster.Tests.Hosting;

public sealed class LoopbackPortsTests
{
    [Fact]
    public void Ports_are_never_handed_out_twice_and_can_be_bound()
    {
        var ports = Enumerable.Range(0, 200).Select(_ => LoopbackPorts.Free()).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
        // The last few are bindable side by side, as a node's remoting, API and metrics ports are.
        var listeners = ports.TakeLast(3).Select(p => new TcpListener(IPAddress.Loopback, p)).ToList();
        try { foreach (var l in listeners) l.Start(); }
        finally { foreach (var l in listeners) l.Stop(); }
    }
}
