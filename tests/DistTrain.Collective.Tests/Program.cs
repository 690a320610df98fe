namespace DistTrain.Collective.Tests;

/// <summary>
/// Entry point of the test assembly when a multi-process test starts it as a child:
/// `dotnet exec DistTrain.Collective.Tests.dll allreduce-child` runs one bench rank, as `disttrain bench` would.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args) =>
        args is ["allreduce-child"] ? await DistTrain.Bench.AllReduceBenchChild.RunAsync(Console.In, Console.Out) : 2;
}
