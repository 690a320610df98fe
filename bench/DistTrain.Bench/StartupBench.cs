using DistTrain.Host;
using System.Diagnostics;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Bench;

/// <summary>One start of a local cluster: how long until the coordinator was up and every worker had registered.</summary>
public sealed record StartupRow(string Remoting, int Run, int Workers, double Seconds);

/// <summary>Both kinds' medians and the TLS runs' extra time over plaintext.</summary>
public sealed record StartupResult(IReadOnlyList<StartupRow> Rows, double PlaintextMedianSeconds, double TlsMedianSeconds, double TlsExtraSeconds);

/// <summary>
/// `disttrain bench startup`: the cost of remoting's mutual TLS on a cluster's start. Each run starts a
/// <see cref="LocalCluster"/> (coordinator in this process, workers as processes; with TLS that includes making the
/// throw-away CA and every node's certificate) and stops it; plaintext and TLS runs alternate so drift in the
/// machine's load falls on both.
/// </summary>
public static class StartupBench
{
    public static async Task<StartupResult> RunAsync(int workers, int runs, string root, ExecutableCommand executable, CancellationToken ct)
    {
        if (workers < 1 || runs < 1) throw new ArgumentException("--workers and --runs must be at least 1");
        var rows = new List<StartupRow>();
        for (int run = 0; run < runs; run++)
            foreach (bool plaintext in new[] { true, false })
            {
                var options = new LocalClusterOptions(workers, Path.Combine(root, $"{run}-{(plaintext ? "plain" : "tls")}"), executable)
                    { PlaintextRemoting = plaintext, GrpcPort = 0 };
                var clock = Stopwatch.StartNew();
                await using (await LocalCluster.StartAsync(options, ct))
                    rows.Add(new StartupRow(plaintext ? "plaintext" : "tls", run, workers, clock.Elapsed.TotalSeconds));
            }
        double Median(string kind)
        {
            var s = rows.Where(r => r.Remoting == kind).Select(r => r.Seconds).Order().ToArray();
            return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        }
        double plain = Median("plaintext"), tls = Median("tls");
        return new StartupResult(rows, plain, tls, tls - plain);
    }

    public static string Table(StartupResult r) =>
        "| remoting | run | workers | start-up (s) |\n|---|---|---|---|\n"
        + string.Concat(r.Rows.Select(x => $"| {x.Remoting} | {x.Run} | {x.Workers} | {x.Seconds:F2} |\n"))
        + $"\nmedian plaintext {r.PlaintextMedianSeconds:F2} s, TLS {r.TlsMedianSeconds:F2} s, TLS costs {r.TlsExtraSeconds:+0.00;-0.00} s";
}
