using DistTrain.Contracts;
using System.Text.Json;
using System.Text.RegularExpressions;
using DistTrain.Cluster.Observability;
using DistTrain.Data;
using Prometheus;

namespace DistTrain.Cluster.Tests.Observability;

/// <summary>
/// The dashboard, the alert rules and the docs agree with the metrics the code defines. (Whether every query returns
/// data is proven against a real Prometheus in Functional/MetricsTests.)
/// </summary>
public sealed partial class MonitoringFilesTests
{
    private static string Monitoring(string file) => File.ReadAllText(ShippedFiles.Find($"k8s/base/monitoring/{file}"));

    /// <summary>Every disttrain_* metric the code defines, by reflection over the metric classes.</summary>
    private static HashSet<string> Defined()
    {
        var metrics = new DistTrainMetrics(Metrics.NewCustomRegistry(), "n:1", ["coordinator", "worker"]);
        var names = new object[] { metrics.Ranks!, metrics.Cluster! }
            .SelectMany(o => o.GetType().GetFields().Select(f => f.GetValue(o)).OfType<Collector>().Select(c => c.Name))
            .ToHashSet();
        names.UnionWith(["disttrain_node_info", "disttrain_gpu_memory_used_bytes", "disttrain_gpu_memory_total_bytes"]);
        return names;
    }

    /// <summary>disttrain_* names used in a text, with histogram series suffixes folded into their metric.</summary>
    private static HashSet<string> Used(string text) => MetricName().Matches(text)
        .Select(m => Regex.Replace(m.Value, "_(bucket|sum|count)$", ""))
        .ToHashSet();

    [Fact]
    public void The_dashboard_and_the_alerts_use_only_defined_metrics()
    {
        var defined = Defined();
        Assert.Empty(Used(Monitoring("grafana-dashboard.json")).Except(defined));
        Assert.Empty(Used(Monitoring("alert-rules.yaml")).Except(defined));
    }

    [Fact]
    public void The_docs_describe_every_defined_metric()
    {
        string docs = File.ReadAllText(ShippedFiles.Find("docs/observability.md"));
        var undocumented = Defined().Where(n => !docs.Contains($"`{n}`")).ToList();
        Assert.True(undocumented.Count == 0, "not in docs/observability.md: " + string.Join(", ", undocumented));
    }

    [Fact]
    public void The_dashboard_has_the_required_panels_unique_ids_and_a_datasource_variable()
    {
        var dashboard = JsonDocument.Parse(Monitoring("grafana-dashboard.json")).RootElement;
        var panels = dashboard.GetProperty("panels").EnumerateArray().ToList();
        var ids = panels.Select(p => p.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var titles = panels.Select(p => p.GetProperty("title").GetString()).ToHashSet();
        foreach (var required in new[] { "Throughput", "Loss per stage", "Step time per rank", "Stragglers", "All-reduce bandwidth", "Cluster membership", "Job states" })
            Assert.Contains(required, titles);
        Assert.Equal("heatmap", panels.Single(p => p.GetProperty("title").GetString() == "Step time per rank").GetProperty("type").GetString());
        var variables = dashboard.GetProperty("templating").GetProperty("list").EnumerateArray().ToList();
        Assert.Contains(variables, v => v.GetProperty("name").GetString() == "datasource" && v.GetProperty("type").GetString() == "datasource");
        foreach (var panel in panels.Where(p => p.TryGetProperty("targets", out _)))
        {
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            Assert.All(panel.GetProperty("targets").EnumerateArray(), t => Assert.False(string.IsNullOrWhiteSpace(t.GetProperty("expr").GetString())));
        }
    }

    [GeneratedRegex(@"\bdisttrain_[a-z_]+[a-z]")]
    private static partial Regex MetricName();
}
