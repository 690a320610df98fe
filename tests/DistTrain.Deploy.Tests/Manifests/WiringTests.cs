using DistTrain.Cluster.Hosting;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>Selectors match labels, and every Service reaches a named container port on the pods it selects.</summary>
public sealed class WiringTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_workload_selects_its_own_pod_template(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var templates = r.PodTemplates().ToList();
        foreach (var (workload, template, selector) in templates)
        {
            Assert.True(Rendered.Matches(selector.MatchLabels, template.Metadata.Labels), $"{workload}: selector does not match its template's labels");
            // No workload's selector may also claim another workload's pods.
            foreach (var other in templates.Where(t => t.Workload != workload))
                Assert.False(Rendered.Matches(selector.MatchLabels, other.Template.Metadata.Labels), $"{workload}'s selector also selects {other.Workload}'s pods");
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_service_selects_pods_and_targets_ports_they_declare(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        foreach (var service in r.OfKind<V1Service>())
        {
            var pods = r.PodTemplates().Where(t => Rendered.Matches(service.Spec.Selector, t.Template.Metadata.Labels)).ToList();
            Assert.True(pods.Count > 0, $"Service {service.Metadata.Name} selects no pods");
            foreach (var port in service.Spec.Ports)
            foreach (var (workload, template, _) in pods)
            {
                var declared = template.Spec.Containers.SelectMany(c => c.Ports ?? []).ToList();
                var target = port.TargetPort?.Value ?? port.Port.ToString();
                Assert.True(declared.Any(p => p.Name == target || p.ContainerPort.ToString() == target),
                    $"Service {service.Metadata.Name} port {port.Name} targets '{target}', which {workload}'s pods do not declare");
                var resolved = declared.First(p => p.Name == target || p.ContainerPort.ToString() == target);
                Assert.Equal(port.Port, resolved.ContainerPort);
            }
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Stateful_sets_are_governed_by_a_headless_service_that_selects_them(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        foreach (var set in r.OfKind<V1StatefulSet>())
        {
            var service = r.One<V1Service>(set.Spec.ServiceName);
            Assert.True(Rendered.Matches(service.Spec.Selector, set.Spec.Template.Metadata.Labels), $"{set.Metadata.Name}: its Service {service.Metadata.Name} does not select it");
        }
        // Node pods must be reachable before they are ready: they become ready by joining through each other.
        foreach (var name in new[] { "disttrain-coordinator", "disttrain-worker" })
        {
            var service = r.One<V1Service>(name);
            Assert.Equal("None", service.Spec.ClusterIP);
            Assert.True(service.Spec.PublishNotReadyAddresses, $"{name} must publish not-ready addresses");
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_grpc_service_reaches_the_coordinators_job_api(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var grpc = r.One<V1Service>("disttrain-grpc");
        var selected = r.PodTemplates().Where(t => Rendered.Matches(grpc.Spec.Selector, t.Template.Metadata.Labels)).Select(t => t.Workload);
        Assert.Equal(["disttrain-coordinator"], selected);
        Assert.Equal(DefaultPorts.Grpc, grpc.Spec.Ports.Single().Port);
    }
}
