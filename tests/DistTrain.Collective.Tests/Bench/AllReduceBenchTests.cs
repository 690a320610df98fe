using System.Diagnostics;
using DistTrain.Bench;

namespace DistTrain.Collective.Tests.Bench;

/// <summary>The bench end to end with real child processes (this assembly started as `allreduce-child`).</summary>
public sealed class AllReduceBenchTests
{
    internal static ProcessStartInfo ThisAssemblyAsChild()
    {
        var psi = new ProcessStartInfo("dotnet");
        foreach (var a in new[] { "exec", typeof(Program).Assembly.Location, "allreduce-child" }) psi.ArgumentList.Add(a);
        return psi;
    }

    [Fact]
    public async Task Small_run_reports_both_modes_and_both_transports_against_the_tcp_baseline()
    {
        var options = new AllReduceBenchOptions
        {
            SizesMb = [1, 2], Procs = [3], Transports = ["shm", "tcp"], BytesPerMeasurement = 1 << 20, GroupTimeout = TimeSpan.FromSeconds(40),
        };
        var rows = await AllReduceBench.RunAsync(options, ThisAssemblyAsChild, TextWriter.Null).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(8, rows.Count);
        Assert.Equal(4, rows.Count(r => r.Transport == "shm"));
        Assert.Equal(4, rows.Count(r => r.Transport == "tcp"));
        Assert.All(rows, r =>
        {
            Assert.True(r.AlgBwGbps > 0 && r.TcpBusBwGbps > 0 && r.BusBwRatioVsTcp > 0);
            Assert.Equal(r.AlgBwGbps * 4.0 / 3, r.BusBwGbps, 6);
        });
        // Ring: the coordinator carries nothing. Coordinator: it receives S from and sends S to each of N workers.
        Assert.All(rows.Where(r => r.Mode == "ring"), r => Assert.Equal(0, r.CoordinatorBytesPerStep));
        Assert.All(rows.Where(r => r.Mode == "coordinator"), r =>
            Assert.InRange(r.CoordinatorBytesPerStep, 2L * 3 * (r.SizeMb << 20), 2L * 3 * (r.SizeMb << 20) + 4096));
    }
}
