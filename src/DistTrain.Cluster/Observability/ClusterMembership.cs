namespace DistTrain.Cluster.Observability;

/// <summary>
/// The cluster's members by role and status, and who is unreachable, kept from membership events as plain values
/// (the metrics actor translates Akka's events; this class needs no actor system).
/// </summary>
public sealed class ClusterMembership
{
    /// <summary>Member statuses exported (a removed member is no longer a member).</summary>
    public static readonly string[] Statuses = ["joining", "weakly_up", "up", "leaving", "exiting", "down"];

    private readonly Dictionary<string, (IReadOnlyCollection<string> Roles, string Status)> _members = new();
    private readonly HashSet<string> _unreachable = new();

    /// <summary>A member changed status; <paramref name="status"/> null means it was removed.</summary>
    public void SetMember(string address, IReadOnlyCollection<string> roles, string? status)
    {
        if (status is null)
        {
            _members.Remove(address);
            _unreachable.Remove(address);
        }
        else _members[address] = (roles, status);
    }

    public void SetReachable(string address, bool reachable)
    {
        if (reachable) _unreachable.Remove(address);
        else if (_members.ContainsKey(address)) _unreachable.Add(address);
    }

    public void Clear()
    {
        _members.Clear();
        _unreachable.Clear();
    }

    public int Count(string role, string status) => _members.Values.Count(m => m.Status == status && m.Roles.Contains(role));

    public int UnreachableCount(string role) => _unreachable.Count(a => _members[a].Roles.Contains(role));

    /// <summary>Akka's status name in the exported form: <c>WeaklyUp</c> → <c>weakly_up</c>.</summary>
    public static string StatusName(Enum status) => status.ToString() switch
    {
        "WeaklyUp" => "weakly_up",
        var s => s.ToLowerInvariant(),
    };
}
