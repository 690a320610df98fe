using DistTrain.Cluster.Hosting;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>Which listed pods <see cref="KubernetesPodDiscovery"/> offers cluster bootstrap as contact points.</summary>
public sealed class PodDiscoveryTests
{
    private static V1Pod Pod(string ip, string phase = "Running", string? port = "management", int number = 8558, bool terminating = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = ip, DeletionTimestamp = terminating ? DateTime.UtcNow : null },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "node", Ports = port is null ? null : [new V1ContainerPort { Name = port, ContainerPort = number }] }] },
        Status = new V1PodStatus { Phase = phase, PodIP = ip },
    };

    [Fact]
    public void Only_running_pods_with_an_ip_and_the_named_port_are_contact_points()
    {
        var targets = KubernetesPodDiscovery.Targets(
        [
            Pod("10.0.0.1"),
            Pod("10.0.0.2", phase: "Pending"),
            Pod("10.0.0.3", terminating: true),
            Pod("", phase: "Running"),
            Pod("10.0.0.5", port: null),
            Pod("10.0.0.6", port: "management-legacy"),   // a name that merely contains the asked one is not it
            Pod("10.0.0.7", number: 9000),
        ], "management").ToList();
        Assert.Equal(["10.0.0.1", "10.0.0.7"], targets.Select(t => t.Host));
        Assert.Equal([8558, 9000], targets.Select(t => t.Port));
        Assert.Equal("10.0.0.7", targets[1].Address.ToString());
    }

    [Fact]
    public void Without_a_port_name_every_running_pod_counts_and_carries_no_port()
    {
        var targets = KubernetesPodDiscovery.Targets([Pod("10.0.0.1"), Pod("10.0.0.2", port: null)], portName: null).ToList();
        Assert.Equal(2, targets.Count);
        Assert.All(targets, t => Assert.Null(t.Port));
    }
}
