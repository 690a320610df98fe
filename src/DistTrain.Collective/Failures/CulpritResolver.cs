namespace DistTrain.Collective;

/// <summary>
/// Decides which rank to blame from what this member has heard. Pure logic, no sockets.
/// </summary>
/// <remarks>
/// In a ring a dead rank is seen directly only by its neighbours; everyone else just sees a
/// neighbour stop. So evidence comes in two strengths:
///   strong: a control channel closed without a goodbye (that peer died), a peer left, or a peer's
///           Abort names a culprit. The first strong verdict wins.
///   weak:   a data socket failed or timed out ("I suspect p"). Members broadcast their suspicions;
///           without strong evidence the culprit is found by following suspicions from our own
///           suspect to a rank that suspects nobody (the one everyone is waiting on).
/// </remarks>
internal sealed class CulpritResolver
{
    private readonly Dictionary<int, (int Suspect, PeerFailureReason Reason)> _suspects = new();
    private (int Rank, PeerFailureReason Reason)? _strong;

    public (int Rank, PeerFailureReason Reason)? Strong => _strong;

    /// <summary>Records "<paramref name="from"/> suspects <paramref name="suspect"/>"; the earliest suspicion per member counts.</summary>
    public void AddSuspicion(int from, int suspect, PeerFailureReason reason) => _suspects.TryAdd(from, (suspect, reason));

    /// <summary>Records strong evidence; returns true if it is the first.</summary>
    public bool AddStrong(int rank, PeerFailureReason reason)
    {
        if (_strong is not null) return false;
        _strong = (rank, reason);
        return true;
    }

    /// <summary>The culprit given a local suspicion (used when no strong evidence arrived in time).</summary>
    public (int Rank, PeerFailureReason Reason) FollowFrom(int suspect, PeerFailureReason reason)
    {
        var seen = new HashSet<int>();
        var current = (Rank: suspect, Reason: reason);
        while (_suspects.TryGetValue(current.Rank, out var next))
        {
            // A cycle (two ranks timing out on each other) has no better answer than our own suspect.
            if (!seen.Add(current.Rank)) return (suspect, reason);
            current = next;
        }
        return current;
    }
}
