using DistTrain.Cluster.Hosting;

namespace DistTrain.Cluster.Tests.Hosting;

/// <summary>What a node process does after its actor system stops: rejoin after a bounded backoff, or exit.</summary>
public sealed class RejoinPolicyTests
{
    private static readonly RejoinPolicy Policy = RejoinPolicy.Default;

    [Fact]
    public void A_downed_node_rejoins_after_a_delay_that_doubles_up_to_the_bound()
    {
        var delays = Enumerable.Range(1, 8).Select(n => Policy.Decide(RejoinPolicy.StopReason.Downed, n)!.Value.TotalSeconds).ToArray();
        Assert.Equal([1, 2, 4, 8, 16, 30, 30, 30], delays);
        Assert.Equal(30, Policy.Decide(RejoinPolicy.StopReason.Downed, int.MaxValue)!.Value.TotalSeconds);
    }

    [Fact]
    public void A_requested_stop_ends_the_process() => Assert.Null(Policy.Decide(RejoinPolicy.StopReason.Requested, 1));

    [Fact]
    public void The_count_starts_over_after_a_host_stayed_up_long_enough()
    {
        Assert.Equal(3, Policy.Count(2, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, Policy.Count(5, TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public void A_node_rejoins_through_the_other_seeds_and_never_its_own_address()
    {
        var self = new NodeSettings(["worker"], "10.0.0.2", 4053, ["akka.tcp://disttrain@10.0.0.1:4053", "akka.tcp://disttrain@10.0.0.2:4053"], ["cpu"], "/tmp")
            { ClusterTls = null, PlaintextRemoting = true };
        Assert.Equal(["akka.tcp://disttrain@10.0.0.1:4053"], RejoinPolicy.RejoinSettings(self)!.Seeds);
        // Only itself to join: a fresh actor system would form a second cluster, so there is no rejoin.
        Assert.Null(RejoinPolicy.RejoinSettings(self with { Seeds = ["akka.tcp://disttrain@10.0.0.2:4053"] }));
        Assert.Null(RejoinPolicy.RejoinSettings(self with { Seeds = [] }));
    }
}
