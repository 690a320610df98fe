using DistTrain.Cluster.Observability;

namespace DistTrain.Cluster.Tests.Observability;

public sealed class ClusterMembershipTests
{
    [Fact]
    public void Counts_members_by_role_and_status_and_unreachable_ones_by_role()
    {
        var m = new ClusterMembership();
        m.SetMember("akka.tcp://disttrain@a:1", ["coordinator"], "up");
        m.SetMember("akka.tcp://disttrain@b:1", ["worker"], "joining");
        m.SetMember("akka.tcp://disttrain@c:1", ["worker", "coordinator"], "up");
        m.SetMember("akka.tcp://disttrain@b:1", ["worker"], "up");
        Assert.Equal(2, m.Count("worker", "up"));
        Assert.Equal(0, m.Count("worker", "joining"));
        Assert.Equal(2, m.Count("coordinator", "up"));

        m.SetReachable("akka.tcp://disttrain@b:1", false);
        m.SetReachable("akka.tcp://disttrain@z:1", false);   // not a member: ignored
        Assert.Equal(1, m.UnreachableCount("worker"));
        Assert.Equal(0, m.UnreachableCount("coordinator"));

        m.SetMember("akka.tcp://disttrain@b:1", ["worker"], null);   // removed
        Assert.Equal(1, m.Count("worker", "up"));
        Assert.Equal(0, m.UnreachableCount("worker"));
    }

    [Fact]
    public void Status_names_are_lower_snake_case()
    {
        Assert.Equal("weakly_up", ClusterMembership.StatusName(Akka.Cluster.MemberStatus.WeaklyUp));
        Assert.Equal("exiting", ClusterMembership.StatusName(Akka.Cluster.MemberStatus.Exiting));
        Assert.All(Enum.GetValues<Akka.Cluster.MemberStatus>().Where(s => s != Akka.Cluster.MemberStatus.Removed),
            s => Assert.Contains(ClusterMembership.StatusName(s), ClusterMembership.Statuses));
    }
}
