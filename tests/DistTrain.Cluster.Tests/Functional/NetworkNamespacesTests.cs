using System.Diagnostics;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// What a partition-test process killed with SIGKILL leaves behind (its namespaces, a process inside one, its host
/// link) is cleared by the next one before it builds its own network; another live process's namespaces are not.
/// </summary>
[Collection("cluster")]
public sealed class NetworkNamespacesTests
{
    [RequiresNetworkNamespacesFact]
    public void Leftovers_of_a_dead_test_process_are_cleared_and_a_live_ones_kept()
    {
        int dead = Enumerable.Range(4_000_000, 100_000).First(p => !Directory.Exists($"/proc/{p}"));
        int live = Environment.ProcessId;   // this process: alive by definition
        string deadNode = $"dt{dead}n0", deadRouter = $"dt{dead}r", deadLink = $"dt{dead}h", liveExtra = $"dt{live}n99";
        Process? orphan = null;
        try
        {
            Ip($"netns add {deadRouter}");
            Ip($"netns add {deadNode}");
            Ip($"link add name {deadLink} type veth peer name rhost netns {deadRouter}");   // as the real setup makes it
            Ip($"netns add {liveExtra}");
            // A node process that outlived its test, still inside its namespace.
            orphan = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", deadNode, "sleep", "300"]) { UseShellExecute = false })!;
            Assert.True(SpinWait.SpinUntil(() => Ip($"netns pids {deadNode}").Trim().Length > 0, TimeSpan.FromSeconds(20)), "the orphan did not start");

            using (NetworkNamespaces.Create(1)) { }

            var left = Ip("netns list");
            Assert.DoesNotContain(deadNode, left);
            Assert.DoesNotContain(deadRouter, left);
            Assert.Contains(liveExtra, left);
            Assert.NotEqual(0, Run($"link show dev {deadLink}").ExitCode);
            Assert.True(orphan.WaitForExit(TimeSpan.FromSeconds(20)), "the process left inside the dead namespace was not ended");
        }
        finally
        {
            if (orphan is { HasExited: false }) orphan.Kill();
            orphan?.Dispose();
            foreach (var ns in new[] { deadNode, deadRouter, liveExtra }) Run($"netns del {ns}");
            Run($"link del dev {deadLink}");
        }
    }

    private static string Ip(string arguments)
    {
        var (code, output, error) = Run(arguments);
        Assert.True(code == 0, $"ip {arguments}: {error}");
        return output;
    }

    private static (int ExitCode, string Output, string Error) Run(string arguments)
    {
        var psi = new ProcessStartInfo(File.Exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "ip", arguments)
            { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(20))) { p.Kill(); throw new TimeoutException($"ip {arguments}"); }
        p.WaitForExit();
        return (p.ExitCode, output.Result, error.Result);
    }
}
