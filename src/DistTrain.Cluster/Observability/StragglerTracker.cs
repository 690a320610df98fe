using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Observability;

/// <summary>One rank's gap in one step: its busy seconds minus the median across ranks (positive = slower).</summary>
public sealed record RankGap(int Rank, string Node, double GapSeconds);

/// <summary>The straggler figures of one complete step of one stage.</summary>
public sealed record StepGaps(string JobId, string Stage, int Step, double MedianBusySeconds, IReadOnlyList<RankGap> Gaps);

/// <summary>
/// Straggler attribution from every rank's <see cref="StepCompleted"/>. Ranks run in lock step, so every rank's wall
/// time per step is about the same: the fast ones wait for the slow one inside the all-reduce. What differs is the time a
/// rank was busy (its step minus its all-reduce time), and the rank that was busy longest is the one the others waited
/// for. Once every rank of the current group reported a step, each rank's gap is its busy time minus the median.
/// </summary>
public sealed class StragglerTracker
{
    private const int MaxPendingSteps = 64;   // steps some rank never reported (a group re-formed mid-window) are dropped
    private readonly Dictionary<(string Job, string Stage), Group> _groups = new();

    /// <summary>A group was formed; <paramref name="nodesByRank"/> names each rank's node.</summary>
    public void OnGeneration(string jobId, string stage, int generation, IReadOnlyList<string> nodesByRank) =>
        _groups[(jobId, stage)] = new Group(generation, nodesByRank);

    /// <summary>Forgets a finished stage.</summary>
    public void OnStageFinished(string jobId, string stage) => _groups.Remove((jobId, stage));

    /// <summary>Records one rank's step; returns the gaps when it was the last rank of that step to report.</summary>
    public StepGaps? OnStep(StepCompleted m)
    {
        if (!_groups.TryGetValue((m.JobId, m.Stage), out var g) || g.Generation != m.Generation || m.Rank < 0 || m.Rank >= g.Nodes.Count) return null;
        if (!g.Pending.TryGetValue(m.Step, out var busy))
        {
            if (g.Pending.Count >= MaxPendingSteps) g.Pending.Remove(g.Pending.Keys.Min());
            g.Pending[m.Step] = busy = new double?[g.Nodes.Count];
        }
        busy[m.Rank] = BusySeconds(m);
        if (busy.Any(b => b is null)) return null;
        foreach (int done in g.Pending.Keys.Where(s => s <= m.Step).ToList()) g.Pending.Remove(done);
        var values = busy.Select(b => b!.Value).ToArray();
        double median = Median(values);
        return new StepGaps(m.JobId, m.Stage, m.Step, median, values.Select((v, rank) => new RankGap(rank, g.Nodes[rank], v - median)).ToList());
    }

    /// <summary>Time the rank worked on the step rather than waiting in (or transferring through) the all-reduce.</summary>
    public static double BusySeconds(StepCompleted m) => Math.Max(0, m.StepSeconds - m.ReduceSeconds);

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("the median of nothing");
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private sealed class Group(int generation, IReadOnlyList<string> nodes)
    {
        public int Generation { get; } = generation;
        public IReadOnlyList<string> Nodes { get; } = nodes;
        public Dictionary<int, double?[]> Pending { get; } = new();
    }
}
