using DistTrain.Cluster.Hosting;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>The settings a Kubernetes pod runs with are accepted, and the one combination that cannot work is refused.</summary>
public sealed class NodeSettingsTests
{
    private static NodeSettings Pod(int managementPort) =>
        new NodeSettings([Roles.Worker], "0.0.0.0", DefaultPorts.Remoting, [], ["cuda:0"], "/shared/runs", PublicHost: "10.0.0.7")
        {
            ManagementPort = managementPort,
            Discovery = NodeSettings.KubernetesDiscovery,
        };

    [Fact]
    public void Kubernetes_discovery_with_a_management_port_is_valid()
    {
        var settings = Pod(DefaultPorts.Management);
        settings.Validate();
        Assert.Equal("akka.tcp://disttrain@10.0.0.7:4053", settings.Address);
    }

    [Fact]
    public void Kubernetes_discovery_without_a_management_port_is_refused_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => Pod(0).Validate());
        Assert.Contains("management port", e.Message);
    }
}
