using Akka.Configuration;
using DistTrain.Cluster.Hosting;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Cluster bootstrap as configured by cluster-config/k8s.hocon (the copy in the rendered ConfigMap) finds exactly the
/// node pods, on their management port, with the rights the node's service account has.
/// </summary>
public sealed class DiscoveryTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    private static Config K8sHocon(Rendered r) =>
        ConfigurationFactory.ParseString(r.Generated<V1ConfigMap>("disttrain-cluster-config").Data["k8s.hocon"]);

    /// <summary>The label selector KubernetesPodDiscovery sends: pod-label-selector with {0} = the service name.</summary>
    private static Dictionary<string, string> Selector(Config hocon)
    {
        string serviceName = hocon.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name");
        string selector = string.Format(hocon.GetString($"{KubernetesPodDiscovery.ConfigPath}.pod-label-selector"), serviceName);
        return selector.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Bootstrap_discovers_exactly_the_node_pods(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var hocon = K8sHocon(r);
        Assert.Equal("kubernetes-pods", hocon.GetString("akka.discovery.method"));
        Assert.Equal(typeof(KubernetesPodDiscovery), Type.GetType(hocon.GetString($"{KubernetesPodDiscovery.ConfigPath}.class")));
        var selector = Selector(hocon);
        var found = r.PodTemplates().Where(t => Rendered.Matches(selector, t.Template.Metadata.Labels)).Select(t => t.Workload).Order();
        // PostgreSQL, Prometheus and Grafana must never be taken for contact points.
        Assert.Equal(["disttrain-coordinator", "disttrain-worker"], found);
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_discovered_port_is_the_management_port(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        string portName = K8sHocon(r).GetString("akka.management.cluster.bootstrap.contact-point-discovery.port-name");
        foreach (var (workload, template, _) in r.PodTemplates().Where(t => Rendered.Matches(Selector(K8sHocon(r)), t.Template.Metadata.Labels)))
        {
            var pod = new V1Pod { Spec = template.Spec, Status = new V1PodStatus { Phase = "Running", PodIP = "10.0.0.1" } };
            Assert.Equal(DefaultPorts.Management, KubernetesPodDiscovery.Targets([pod], portName).Single().Port);
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void A_new_cluster_forms_only_once_every_coordinator_can_be_seen(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var coordinators = r.One<V1StatefulSet>("disttrain-coordinator");
        int required = K8sHocon(r).GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr");
        Assert.Equal(coordinators.Spec.Replicas, required);
        // With OrderedReady pod 1 would wait for pod 0 to be ready, which waits for pod 1 to be seen: start them together.
        Assert.Equal("Parallel", coordinators.Spec.PodManagementPolicy);
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_node_service_account_may_get_watch_and_list_pods(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var nodeTemplates = r.PodTemplates().Where(t => Rendered.NodeContainers(t.Template).Any()).ToList();
        string account = nodeTemplates.Select(t => t.Template.Spec.ServiceAccountName).Distinct().Single();
        var sa = r.One<V1ServiceAccount>(account);
        Assert.NotEqual(false, sa.AutomountServiceAccountToken);
        Assert.All(nodeTemplates, t => Assert.NotEqual(false, t.Template.Spec.AutomountServiceAccountToken));

        var bindings = r.OfKind<V1RoleBinding>()
            .Where(b => b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == account && s.NamespaceProperty == sa.Metadata.NamespaceProperty))
            .ToList();
        var rules = bindings.Where(b => b.RoleRef.Kind == "Role").SelectMany(b => r.One<V1Role>(b.RoleRef.Name).Rules).ToList();
        foreach (var verb in new[] { "get", "watch", "list" })
            Assert.Contains(rules, rule => rule.ApiGroups.Contains("") && rule.Resources.Contains("pods") && rule.Verbs.Contains(verb));
        // Least privilege: pods only, read only.
        Assert.All(rules, rule =>
        {
            Assert.Equal(["pods"], rule.Resources);
            Assert.Empty(rule.Verbs.Except(["get", "watch", "list"]));
        });
    }
}
