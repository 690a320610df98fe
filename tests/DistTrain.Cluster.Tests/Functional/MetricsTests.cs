using DistTrain.Host;
using DistTrain.Contracts;
using System.Text.Json;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Data;
using DistTrain.Training.Engine;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// The observability proof: a real Prometheus scrapes a real local cluster (the coordinator in this process, two
/// worker processes) while it trains a short job; every query of the Grafana dashboard then returns data through
/// Prometheus's HTTP API, the alert rules load and evaluate on the live series, and promtool checks and unit-tests them.
/// </summary>
[Collection("cluster")]
public sealed class MetricsTests(ITestOutputHelper output)
{
    private const int Steps = 24;

    [Fact]
    public async Task Prometheus_scrapes_every_node_and_every_dashboard_query_returns_data()
    {
        PrometheusServer.RequireInstalled();
        string monitoring = ShippedFiles.Find("k8s/base/monitoring");
        string rules = Path.Combine(monitoring, "alert-rules.yaml");
        string yaml = ClusterHarness.Spec(workers: 2, "ring", steps: Steps, checkpointEvery: 8, checksumEvery: 8);
        using var root = new TempDir();
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // Rank 1 stalls 1 s after each of steps 4 to 7: a straggler the gap must name, long enough for several 1 s scrapes.
        Environment.SetEnvironmentVariable(FaultInjection.Variable, string.Join(";", Enumerable.Range(4, 4).Select(s => $"straggle:rank=1:step={s}:seconds=1")));
        try
        {
            await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(2, root.Path, ClusterHarness.Disttrain()) { ServeMetrics = true });
            Assert.Equal(3, cluster.MetricsTargets.Count);
            using var prometheus = PrometheusServer.Start(Path.Combine(root.Path, "prometheus"), cluster.MetricsTargets, rules);
            await prometheus.WaitForTargetsAsync(3, TimeSpan.FromSeconds(60));
            output.WriteLine($"cluster up, 3 targets scraped: {clock.Elapsed.TotalSeconds:F1} s");

            // Submitted through the job API: the job manager publishes the job events the coordinator's metrics export.
            var start = DateTime.UtcNow.AddSeconds(-5);
            var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: false);
            Assert.True(result.State == JobState.Succeeded, result.Stages.Single().Summary);
            string jobId = result.JobId;
            output.WriteLine($"job {jobId} done: {clock.Elapsed.TotalSeconds:F1} s");

            // Until the last scrapes saw the end: every rank's steps, the three checkpoints (steps 8, 16, 24), the job's final state.
            await prometheus.WaitUntilAsync(async () => (await prometheus.InstantAsync("sum(disttrain_steps_total)")) is [{ Value: 2 * Steps }]
                && (await prometheus.InstantAsync("sum(disttrain_checkpoint_seconds_count)")) is [{ Value: 3 }]
                && (await prometheus.InstantAsync("disttrain_job_state{state=\"succeeded\"} == 1")).Count == 1, TimeSpan.FromSeconds(30), "final figures scraped");
            // Grafana evaluates a range at start + k·step; a whole number of steps puts the last point at the end, after the final scrape.
            var end = DateTime.UtcNow;
            start = end - TimeSpan.FromSeconds(Math.Ceiling((end - start).TotalSeconds));

            // Every panel's every query, as Grafana would run it over the job's time range.
            var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(monitoring, "grafana-dashboard.json"))).RootElement;
            int queries = 0;
            var empty = new List<string>();
            foreach (var panel in dashboard.GetProperty("panels").EnumerateArray())
            {
                if (!panel.TryGetProperty("targets", out var targets)) continue;   // rows
                foreach (var target in targets.EnumerateArray())
                {
                    string expr = GrafanaVariables(target.GetProperty("expr").GetString()!);
                    var series = await prometheus.RangeAsync(expr, start, end, TimeSpan.FromSeconds(1));
                    int finite = series.Sum(s => s.Values.Count(double.IsFinite));
                    output.WriteLine($"{panel.GetProperty("title").GetString()}: {series.Count} series, {finite} finite points  ← {expr}");
                    if (finite == 0) empty.Add($"{panel.GetProperty("title").GetString()}: {expr}");
                    queries++;
                }
            }
            Assert.True(queries >= 20, $"only {queries} queries in the dashboard");
            Assert.True(empty.Count == 0, "panels without data:\n" + string.Join("\n", empty));

            // Rank figures come from the worker processes themselves; membership and jobs from the coordinator.
            var steps = await prometheus.InstantAsync("disttrain_steps_total");
            Assert.Equal(2, steps.Select(s => s.Labels["instance"]).Distinct().Count());
            Assert.All(steps, s => Assert.NotEqual(cluster.MetricsTargets[0], s.Labels["instance"]));
            Assert.Equal(3, (await prometheus.InstantAsync("count by (instance) (disttrain_node_info)")).Count);
            Assert.Equal(2, (await prometheus.InstantAsync("disttrain_cluster_members{role=\"worker\", status=\"up\"}")).Single().Value);

            // Independent references: the stage's history file (rank 0 writes one line per step) and the final weights.
            var history = File.ReadLines(Path.Combine(root.Path, jobId, "lm", "history.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(Steps, history.Count);
            long trainedTargets = history.Sum(h => h.GetProperty("Targets").GetInt64());
            Assert.Equal(trainedTargets, (await prometheus.InstantAsync("disttrain_tokens_total")).Single().Value);
            double lastLoss = history[^1].GetProperty("Loss").GetDouble();
            foreach (var (_, loss) in await prometheus.InstantAsync("disttrain_loss"))
                Assert.Equal(lastLoss, loss, 9);
            // Per step a rank reduces the target count (1 float) and the gradients with the loss and a flag (P + 2
            // floats), fp32 on the wire; the final evaluation adds a few floats.
            long parameters = ClusterHarness.FinalParameters(yaml, root.Path, jobId).Length;
            long perSteps = Steps * 4L * (1 + parameters + 2);
            foreach (var (labels, bytes) in await prometheus.InstantAsync("disttrain_allreduce_bytes_total"))
                Assert.InRange(bytes, perSteps, perSteps + 256);
            Assert.Equal(3, (await prometheus.InstantAsync("disttrain_checkpoint_seconds_count{rank=\"0\"}")).Single().Value);

            // The straggler is named: rank 1's gap reached about half its 1 s stall (two ranks: the median is the mean).
            var gaps = (await prometheus.InstantAsync("max by (rank) (max_over_time(disttrain_straggler_gap_seconds[5m]))"))
                .ToDictionary(g => g.Labels["rank"], g => g.Value);
            output.WriteLine($"largest straggler gap: rank 0 {gaps["0"]:F3} s, rank 1 {gaps["1"]:F3} s");
            // Bounds leave room for a loaded machine: compute times of the two ranks differ a little from step to step.
            Assert.InRange(gaps["1"], 0.35, 1.0);
            Assert.True(gaps["1"] > gaps["0"] + 0.25, $"rank 0 gap {gaps["0"]}, rank 1 gap {gaps["1"]}");

            // The alert rules loaded into the live server and evaluate without error on these series.
            var loaded = await prometheus.RulesAsync();
            Assert.Equal(6, loaded.Count);
            Assert.All(loaded, r => Assert.True(r.Health == "ok", $"{r.Name}: {r.Health} {r.Error}"));
            output.WriteLine($"queries checked: {queries}; {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            Environment.SetEnvironmentVariable(FaultInjection.Variable, null);
        }

        var check = PrometheusServer.RunPromtool(monitoring, "check", "rules", "alert-rules.yaml");
        Assert.True(check.ExitCode == 0, check.Output);
        Assert.Contains("SUCCESS: 6 rules found", check.Output);
        var test = PrometheusServer.RunPromtool(monitoring, "test", "rules", "alert-rules.test.yaml");
        Assert.True(test.ExitCode == 0, test.Output);
        Assert.Contains("SUCCESS", test.Output);
    }

    /// <summary>Grafana's substitutions: every job (the dashboard's "All"), and $__rate_interval for a 1 s scrape and 1 s step (max(step + scrape, 4 × scrape)).</summary>
    private static string GrafanaVariables(string expr) => expr.Replace("$job_id", ".*").Replace("$__rate_interval", "4s");
}
