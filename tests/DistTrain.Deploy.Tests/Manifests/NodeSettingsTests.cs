using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>The settings a Kubernetes pod runs with are accepted, and the one combination that cannot work is refused.</summary>
public sealed class NodeSettingsTests
{
    private static NodeSettings Pod(int managementPort) =>
        new NodeSettings([Roles.Worker], "0.0.0.0", DefaultPorts.Remoting, [], ["cuda:0"], "/shared/runs", PublicHost: "10.0.0.7")
        {
            ManagementPort = managementPort,
            Discovery = NodeSettings.KubernetesDiscovery,
            // The files the manifests mount from the remoting Secret (Validate does not read them).
            ClusterTls = new ClusterTlsFiles("/etc/disttrain/tls/tls.crt", "/etc/disttrain/tls/tls.key", "/etc/disttrain/tls/ca.crt"),
            PlaintextRemoting = false,
        };

    [Fact]
    public void Kubernetes_discovery_with_a_management_port_is_valid()
    {
        var settings = Pod(DefaultPorts.Management);
        settings.Validate();
        Assert.Equal("akka.ssl.tcp://disttrain@10.0.0.7:4053", settings.Address);
    }

    [Fact]
    public void Kubernetes_discovery_without_a_management_port_is_refused_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => Pod(0).Validate());
        Assert.Contains("management port", e.Message);
    }

    [Fact]
    public void A_node_without_cluster_certificates_is_refused_unless_plaintext_is_chosen()
    {
        var e = Assert.Throws<ArgumentException>(() => (Pod(DefaultPorts.Management) with { ClusterTls = null }).Validate());
        Assert.Contains(EnvironmentVariables.ClusterTlsCertificate, e.Message);
        var plaintext = Pod(DefaultPorts.Management) with { ClusterTls = null, PlaintextRemoting = true };
        plaintext.Validate();
        Assert.Equal("akka.tcp://disttrain@10.0.0.7:4053", plaintext.Address);
    }

    [Fact]
    public void A_seed_of_the_other_scheme_is_refused_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => (Pod(DefaultPorts.Management) with { Seeds = ["akka.tcp://disttrain@10.0.0.8:4053"] }).Validate());
        Assert.Contains("akka.ssl.tcp://", e.Message);
    }

    [Fact]
    public void Every_variable_a_node_reads_is_documented()
    {
        string doc = File.ReadAllText(Repository.PathOf("docs/configuration.md"));
        // The node's, the client commands', and the three read where they act (NodeEnvironment's remarks).
        string[] read = [.. EnvironmentVariables.All, .. EnvironmentVariables.Client,
            DistTrain.Training.Engine.FaultInjection.Variable, DistTrain.Training.Pipeline.DataCatalog.CacheVariable, DistTrain.Data.Fetching.DataCache.EnvironmentVariable];
        Assert.All(read, v => Assert.Contains($"`{v}`", doc));
    }
}
