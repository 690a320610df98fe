using System.Net;

namespace DistTrain.Collective.Tests;

/// <summary>
/// Entry point of the test assembly when a multi-process test starts it as a child
/// (`dotnet exec DistTrain.Collective.Tests.dll MODE`):
///   allreduce-child   one bench rank, exactly as `disttrain bench allreduce` runs it
///   ring-child        one ring rank that all-reduces until its group fails, then prints who failed
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args) => args switch
    {
        ["allreduce-child"] => await DistTrain.Bench.AllReduceBenchChild.RunAsync(Console.In, Console.Out),
        ["ring-child"] => await RingChildAsync(),
        _ => 2,
    };

    // Protocol: print our port; read "rank port0,port1,... secret-base64"; print RUNNING after the first all-reduce;
    // print "FAILED <rank> <reason>" when the group fails.
    private static async Task<int> RingChildAsync()
    {
        using var listener = DataPlaneListener.Start(IPAddress.Loopback);
        Console.WriteLine(listener.Port);
        var setup = Console.ReadLine()!.Split(' ');
        int rank = int.Parse(setup[0]);
        var peers = setup[1].Split(',').Select(p => (EndPoint)new IPEndPoint(IPAddress.Loopback, int.Parse(p))).ToArray();
        var options = new DataPlaneOptions { IoTimeout = TimeSpan.FromSeconds(20), FailureGrace = TimeSpan.FromMilliseconds(300) };
        using var group = await ProcessGroup.ConnectAsync(new GroupSpec("mp-test", 1, rank, peers.Length, peers) { Secret = new(Convert.FromBase64String(setup[2])) }, listener, options);
        var buffer = new float[1 << 20];
        try
        {
            group.AllReduce(buffer);
            Console.WriteLine("RUNNING");
            while (true) group.AllReduce(buffer);
        }
        catch (PeerFailedException e)
        {
            Console.WriteLine($"FAILED {e.Rank} {e.Reason}");
            return 0;
        }
    }
}
