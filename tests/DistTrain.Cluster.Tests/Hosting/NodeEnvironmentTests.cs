using DistTrain.Cluster.Hosting;
using DistTrain.Collective.Wire;

namespace DistTrain.Cluster.Tests.Hosting;

/// <summary>Every variable is read once, typed, and a malformed one is refused with its name (no environment is touched).</summary>
public sealed class NodeEnvironmentTests
{
    private static NodeEnvironment Read(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return NodeEnvironment.Read(name => map.GetValueOrDefault(name));
    }

    [Fact]
    public void Values_arrive_typed_and_empty_means_unset()
    {
        var env = Read((EnvironmentVariables.Port, "4100"), (EnvironmentVariables.GrpcPort, "0"), (EnvironmentVariables.TorchThreads, "2"),
            (EnvironmentVariables.ApiTokenGrace, "30"), (EnvironmentVariables.DataPlaneIntegrity, "none"), (EnvironmentVariables.ClusterTls, "off"),
            (EnvironmentVariables.DataPlaneSharedMemory, "off"), (EnvironmentVariables.Roles, "worker"), (EnvironmentVariables.DataRoot, ""), (EnvironmentVariables.MetricsPort, ""),
            (EnvironmentVariables.RejoinWithoutCoordinator, "0"));
        Assert.Equal(4100, env.Port);
        Assert.Equal(0, env.GrpcPort);
        Assert.Null(env.MetricsPort);
        Assert.Equal(2, env.TorchThreads);
        Assert.Equal(TimeSpan.FromSeconds(30), env.ApiTokenGrace);
        Assert.Equal(TimeSpan.Zero, env.RejoinWithoutCoordinator);
        Assert.Null(Read().RejoinWithoutCoordinator);
        Assert.Equal(FrameIntegrities.Parse("none"), env.DataPlaneIntegrity);
        Assert.True(env.PlaintextRemoting);
        Assert.False(env.DataPlaneSharedMemory);
        Assert.Null(Read().DataPlaneSharedMemory);
        Assert.Equal("worker", env.Roles);
        Assert.Null(env.DataRoot);
        Assert.Null(env.ClusterTls);
    }

    [Theory]
    [InlineData("DISTTRAIN_PORT", "http")]
    [InlineData("DISTTRAIN_METRICS_PORT", "9464x")]
    [InlineData("DISTTRAIN_TORCH_THREADS", "-1")]
    [InlineData("DISTTRAIN_API_TOKEN_GRACE", "5m")]
    [InlineData("DISTTRAIN_REJOIN_WITHOUT_COORDINATOR", "-1")]
    [InlineData("DISTTRAIN_CLUSTER_TLS", "maybe")]
    [InlineData("DISTTRAIN_DATAPLANE_SHARED_MEMORY", "yes")]
    public void A_malformed_value_is_refused_with_the_variables_name(string name, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => Read((name, value)));
        Assert.Contains(name, e.Message);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void Half_a_cluster_TLS_configuration_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => Read((EnvironmentVariables.ClusterTlsCertificate, "/tls/tls.crt")));
        Assert.Contains(EnvironmentVariables.ClusterTlsAuthority, e.Message);
        var files = Read((EnvironmentVariables.ClusterTlsCertificate, "/tls/tls.crt"), (EnvironmentVariables.ClusterTlsKey, "/tls/tls.key"),
            (EnvironmentVariables.ClusterTlsAuthority, "/tls/ca.crt")).ClusterTls;
        Assert.Equal(new("/tls/tls.crt", "/tls/tls.key", "/tls/ca.crt"), files);
    }
}
