using Akka.Cluster;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Cluster.Tests.Hosting;

/// <summary>When a node without the coordinator role counts as cut off from every coordinator (<see cref="OrphanWatch"/>).</summary>
public sealed class OrphanWatchTests
{
    private static (IReadOnlyCollection<string>, MemberStatus) Member(MemberStatus status, params string[] roles) => (roles, status);

    [Fact]
    public void A_worker_alone_or_among_workers_is_an_orphan()
    {
        Assert.True(OrphanWatch.IsOrphan(true, [Member(MemberStatus.Up, Roles.Worker)]));
        Assert.True(OrphanWatch.IsOrphan(true, [Member(MemberStatus.Up, Roles.Worker), Member(MemberStatus.Up, Roles.Worker)]));
    }

    [Theory]
    [InlineData(MemberStatus.Exiting)]
    [InlineData(MemberStatus.Down)]
    [InlineData(MemberStatus.Removed)]
    public void A_coordinator_on_its_way_out_does_not_count(MemberStatus status) =>
        Assert.True(OrphanWatch.IsOrphan(true, [Member(MemberStatus.Up, Roles.Worker), Member(status, Roles.Coordinator)]));

    [Theory]
    [InlineData(MemberStatus.Joining)]
    [InlineData(MemberStatus.WeaklyUp)]
    [InlineData(MemberStatus.Up)]
    [InlineData(MemberStatus.Leaving)]
    public void A_coordinator_member_is_enough_reachable_or_not(MemberStatus status) =>
        Assert.False(OrphanWatch.IsOrphan(true, [Member(MemberStatus.Up, Roles.Worker), Member(status, Roles.Coordinator, Roles.Worker)]));

    [Fact]
    public void A_node_that_is_not_up_yet_is_no_orphan() =>
        Assert.False(OrphanWatch.IsOrphan(false, [Member(MemberStatus.Joining, Roles.Worker)]));
}
