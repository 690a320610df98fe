using System.Text.Json;
using System.Text.RegularExpressions;
using DistTrain.Cluster.Hosting;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>Prometheus scrapes every node's metrics port and loads the alert rules; Grafana gets the dashboard and Prometheus.</summary>
public sealed class MonitoringTests
{
    private static readonly Rendered R = Rendered.Of(Rendered.Base);

    private static YamlMappingNode Yaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents.Single().RootNode;
    }

    private static YamlMappingNode PrometheusConfig() => Yaml(R.Generated<V1ConfigMap>("disttrain-prometheus-config").Data["prometheus.yml"]);

    /// <summary>Prometheus anchors relabel regexes at both ends.</summary>
    private static bool FullMatch(string regex, string value) => Regex.IsMatch(value, $"^(?:{regex})$");

    [Fact]
    public void The_scrape_job_keeps_exactly_the_node_pods_on_their_metrics_port()
    {
        var job = (YamlMappingNode)((YamlSequenceNode)PrometheusConfig()["scrape_configs"]).Single();
        Assert.Equal("pod", ((YamlMappingNode)((YamlSequenceNode)job["kubernetes_sd_configs"]).Single())["role"].ToString());
        var keeps = ((YamlSequenceNode)job["relabel_configs"]).Cast<YamlMappingNode>()
            .Where(rule => rule.Children.TryGetValue("action", out var action) && action.ToString() == "keep")
            .Select(rule => (Source: ((YamlSequenceNode)rule["source_labels"]).Single().ToString(), Regex: rule["regex"].ToString()))
            .ToList();
        const string labelPrefix = "__meta_kubernetes_pod_label_";
        foreach (var (workload, template, _) in R.PodTemplates())
        {
            bool kept = keeps.Where(k => k.Source.StartsWith(labelPrefix, StringComparison.Ordinal)).All(k =>
                template.Metadata.Labels.Any(l => Sanitize(l.Key) == k.Source[labelPrefix.Length..] && FullMatch(k.Regex, l.Value)));
            bool node = Rendered.NodeContainers(template).Any();
            Assert.True(kept == node, $"{workload}: {(node ? "a node not scraped" : "scraped but not a node")}");
            if (!node) continue;
            var portKeep = keeps.Single(k => k.Source == "__meta_kubernetes_pod_container_port_name");
            var metrics = template.Spec.Containers.SelectMany(c => c.Ports ?? []).Where(p => FullMatch(portKeep.Regex, p.Name)).ToList();
            Assert.Equal(DefaultPorts.Metrics, metrics.Single().ContainerPort);
            Assert.Equal(DefaultPorts.Metrics.ToString(), template.Metadata.Annotations["prometheus.io/port"]);
        }
    }

    /// <summary>How Prometheus turns a Kubernetes label name into a meta-label suffix.</summary>
    private static string Sanitize(string label) => Regex.Replace(label, "[^a-zA-Z0-9_]", "_");

    [Fact]
    public void Prometheus_loads_the_alert_rules_it_is_given()
    {
        var prometheus = R.One<V1Deployment>("disttrain-prometheus").Spec.Template.Spec;
        var container = prometheus.Containers.Single();
        string ruleGlob = ((YamlSequenceNode)PrometheusConfig()["rule_files"]).Single().ToString();
        var rulesVolume = prometheus.Volumes.Single(v => v.ConfigMap?.Name.StartsWith("disttrain-alert-rules-", StringComparison.Ordinal) == true);
        string mount = container.VolumeMounts.Single(m => m.Name == rulesVolume.Name).MountPath;
        var rules = R.Generated<V1ConfigMap>("disttrain-alert-rules").Data;
        Assert.Equal(Path.Combine(mount, "*.yaml"), ruleGlob);
        Assert.All(rules.Keys, k => Assert.EndsWith(".yaml", k));
        Assert.All(rules.Values, text => Assert.IsType<YamlSequenceNode>(Yaml(text)["groups"]));

        var configVolume = prometheus.Volumes.Single(v => v.ConfigMap?.Name.StartsWith("disttrain-prometheus-config-", StringComparison.Ordinal) == true);
        var configMount = container.VolumeMounts.Single(m => m.Name == configVolume.Name);
        Assert.Contains($"--config.file={configMount.MountPath}", container.Args);
    }

    [Fact]
    public void Prometheus_may_list_the_pods_it_discovers()
    {
        string account = R.One<V1Deployment>("disttrain-prometheus").Spec.Template.Spec.ServiceAccountName;
        var binding = R.OfKind<V1RoleBinding>().Single(b => b.Subjects.Any(s => s.Name == account));
        var rules = R.One<V1Role>(binding.RoleRef.Name).Rules;
        Assert.Contains(rules, rule => rule.Resources.Contains("pods") && rule.Verbs.Contains("list") && rule.Verbs.Contains("watch"));
    }

    [Fact]
    public void Grafana_is_provisioned_with_the_dashboard_and_prometheus()
    {
        var dashboard = R.Generated<V1ConfigMap>("disttrain-grafana-dashboard");
        Assert.Equal("1", dashboard.Metadata.Labels["grafana_dashboard"]);
        using var json = JsonDocument.Parse(dashboard.Data["grafana-dashboard.json"]);
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("title").GetString()));

        var grafana = R.One<V1Deployment>("disttrain-grafana").Spec.Template.Spec;
        var mounts = grafana.Containers.Single().VolumeMounts;
        var provisioning = R.Generated<V1ConfigMap>("disttrain-grafana-provisioning").Data;
        // The dashboard provider reads the folder the dashboard ConfigMap is mounted in (or one above it).
        string providerPath = ((YamlMappingNode)((YamlSequenceNode)Yaml(provisioning["dashboards.yaml"])["providers"]).Single())["options"]["path"].ToString();
        var dashboardVolume = grafana.Volumes.Single(v => v.ConfigMap?.Name == dashboard.Metadata.Name);
        Assert.StartsWith(providerPath, mounts.Single(m => m.Name == dashboardVolume.Name).MountPath);
        // The data source is the Prometheus Service.
        string url = ((YamlMappingNode)((YamlSequenceNode)Yaml(provisioning["datasources.yaml"])["datasources"]).Single())["url"].ToString();
        var prometheus = R.One<V1Service>("disttrain-prometheus");
        Assert.Equal($"http://{prometheus.Metadata.Name}:{prometheus.Spec.Ports.Single().Port}", url);
    }
}
