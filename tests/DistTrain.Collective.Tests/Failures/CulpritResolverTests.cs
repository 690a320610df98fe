namespace DistTrain.Collective.Tests.Failures;

public sealed class CulpritResolverTests
{
    [Fact]
    public void Follows_suspicions_to_the_rank_everyone_waits_on()
    {
        // Ring 0→1→2→3→0 with rank 2 silent: 3 times out on 2, then 0 on 3, then 1 on 0.
        var r = new CulpritResolver();
        r.AddSuspicion(3, 2, PeerFailureReason.TimedOut);
        r.AddSuspicion(0, 3, PeerFailureReason.ConnectionLost);
        Assert.Equal((2, PeerFailureReason.TimedOut), r.FollowFrom(0, PeerFailureReason.ConnectionLost));
    }

    [Fact]
    public void A_cycle_falls_back_to_our_own_suspect()
    {
        var r = new CulpritResolver();
        r.AddSuspicion(0, 1, PeerFailureReason.TimedOut);
        r.AddSuspicion(1, 0, PeerFailureReason.TimedOut);
        Assert.Equal((1, PeerFailureReason.TimedOut), r.FollowFrom(1, PeerFailureReason.TimedOut));
    }

    [Fact]
    public void First_strong_evidence_wins()
    {
        var r = new CulpritResolver();
        Assert.True(r.AddStrong(2, PeerFailureReason.ConnectionLost));
        Assert.False(r.AddStrong(3, PeerFailureReason.Left));
        Assert.Equal((2, PeerFailureReason.ConnectionLost), r.Strong);
    }
}
