using Akka.Actor;
using Akka.Configuration;
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
        // A node that left a cluster without a coordinator rejoins on the same schedule, however often.
        Assert.Equal(delays, Enumerable.Range(1, 8).Select(n => Policy.Decide(RejoinPolicy.StopReason.CoordinatorAbsent, n)!.Value.TotalSeconds));
    }

    [Fact]
    public void A_failed_tls_handshake_starts_afresh_a_bounded_number_of_times_in_a_row()
    {
        // A peer that closed mid-handshake (restarting, or behind a partition) is transient: start afresh, as after a downing.
        var delays = Enumerable.Range(1, RejoinPolicy.MaxTransportFailures)
            .Select(n => Policy.Decide(RejoinPolicy.StopReason.TlsHandshakeFailed, n)!.Value.TotalSeconds).ToArray();
        Assert.Equal([1, 2, 4, 8, 16], delays);
        // One that persists (a certificate the peers refuse) ends the process, which then exits with Akka's code for it.
        Assert.Null(Policy.Decide(RejoinPolicy.StopReason.TlsHandshakeFailed, RejoinPolicy.MaxTransportFailures + 1));
        Assert.Equal(1, Policy.Count(RejoinPolicy.MaxTransportFailures, RejoinPolicy.Default.Stable));
    }

    [Fact]
    public async Task The_reason_is_read_from_the_actor_systems_coordinated_shutdown()
    {
        // Akka.Remote's reason type is internal: the policy knows it by name, so an upgrade that renames it must fail here.
        var type = typeof(Akka.Remote.RemoteSettings).Assembly.GetType(RejoinPolicy.TlsHandshakeFailureReasonType);
        Assert.NotNull(type);
        var tls = (CoordinatedShutdown.Reason)Activator.CreateInstance(type!, "TLS handshake failed on outbound connection")!;
        var cases = new (CoordinatedShutdown.Reason Reason, RejoinPolicy.StopReason Expected)[]
        {
            (CoordinatedShutdown.ClusterDowningReason.Instance, RejoinPolicy.StopReason.Downed),
            (CoordinatorWatch.CoordinatorAbsent.Instance, RejoinPolicy.StopReason.CoordinatorAbsent),
            (tls, RejoinPolicy.StopReason.TlsHandshakeFailed),
            (CoordinatedShutdown.ClrExitReason.Instance, RejoinPolicy.StopReason.Requested),
        };
        foreach (var (reason, expected) in cases)
        {
            using var system = ActorSystem.Create("rejoin-reason", ConfigurationFactory.ParseString("akka.coordinated-shutdown.exit-clr = off"));
            await CoordinatedShutdown.Get(system).Run(reason).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(expected, RejoinPolicy.ReasonOf(system));
        }
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
        Assert.Null(self.SeedNodeTimeout);
    }

    [Fact]
    public void The_founder_lists_itself_first_again_but_forms_a_cluster_only_when_every_other_seed_is_in_none()
    {
        const string founder = "akka.tcp://disttrain@10.0.0.1:4053", worker = "akka.tcp://disttrain@10.0.0.2:4053", other = "akka.tcp://disttrain@10.0.0.3:4053";
        var node = new NodeSettings(["coordinator"], "10.0.0.1", 4053, [founder, worker, other], ["cpu"], "/tmp") { ClusterTls = null, PlaintextRemoting = true };
        var rejoin = RejoinPolicy.RejoinSettings(node)!;
        // Self first runs Akka's first-seed process: join an answering cluster, or itself once all others answered "none";
        // the timeout after which it would join itself anyway is raised past any run.
        Assert.Equal([founder, worker, other], rejoin.Seeds);
        Assert.Equal(RejoinPolicy.FounderSeedNodeTimeout, rejoin.SeedNodeTimeout);
        Assert.True(rejoin.SeedNodeTimeout > TimeSpan.FromDays(30));
        // A second rejoin of the founder stays the same; any other node never lists itself, and keeps the founder first.
        Assert.Equal(rejoin.Seeds, RejoinPolicy.RejoinSettings(rejoin)!.Seeds);
        var workerNode = node with { Host = "10.0.0.2", Roles = ["worker"] };
        Assert.Equal([founder, other], RejoinPolicy.RejoinSettings(workerNode)!.Seeds);
        Assert.Null(RejoinPolicy.RejoinSettings(workerNode)!.SeedNodeTimeout);
    }
}
