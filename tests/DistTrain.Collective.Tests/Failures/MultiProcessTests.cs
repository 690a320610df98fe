using System.Diagnostics;
using DistTrain.Bench;

namespace DistTrain.Collective.Tests.Failures;

/// <summary>Real processes: a rank killed by the OS mid-collective is named by the survivors.</summary>
public sealed class MultiProcessTests
{
    [Fact]
    public async Task Survivors_name_a_killed_rank_within_seconds()
    {
        const int world = 3, victim = 1;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        using var children = new ChildSet(); // kills every child on dispose, pass or fail
        for (int r = 0; r < world; r++)
        {
            var psi = new ProcessStartInfo("dotnet");
            foreach (var a in new[] { "exec", typeof(Program).Assembly.Location, "ring-child" }) psi.ArgumentList.Add(a);
            children.Start(psi);
        }
        var ports = new string[world];
        for (int r = 0; r < world; r++) ports[r] = await children.ReadLineAsync(r, cts.Token);
        for (int r = 0; r < world; r++) await children.WriteLineAsync(r, $"{r} {string.Join(',', ports)} {Convert.ToBase64String(LocalCluster.Secret.ToBytes())}");
        for (int r = 0; r < world; r++) Assert.Equal("RUNNING", await children.ReadLineAsync(r, cts.Token));

        var clock = Stopwatch.StartNew();
        children.Kill(victim);
        foreach (int r in new[] { 0, 2 })
            Assert.Equal($"FAILED {victim} ConnectionLost", await children.ReadLineAsync(r, cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }
}
