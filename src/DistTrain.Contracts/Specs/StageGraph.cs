namespace DistTrain.Contracts.Specs;

/// <summary>The stage dependency DAG: run order for the scheduler and cycle detection for the validator.</summary>
/// <remarks>Edges are <see cref="StageSpec.Dependencies"/>: explicit needs plus every stage named in inputs or data.</remarks>
public static class StageGraph
{
    /// <summary>Stages in an order where each comes after everything it depends on.</summary>
    /// <remarks>
    /// Ties go to the stage declared first in the file, so the order is deterministic and reads like the spec.
    /// Only call on a validated spec: throws if a dependency is missing or the graph has a cycle.
    /// </remarks>
    public static IReadOnlyList<StageSpec> TopologicalOrder(JobSpec spec)
    {
        var nodes = spec.Stages.Select(s => (s.Name, s.Dependencies())).ToList();
        foreach (var (name, deps) in nodes)
        {
            foreach (var dep in deps)
            {
                if (!nodes.Any(n => n.Name == dep))
                    throw new InvalidOperationException($"stage '{name}' depends on unknown stage '{dep}'; validate the spec first");
            }
        }
        var order = Order(nodes);
        if (order.Count != nodes.Count)
            throw new InvalidOperationException("stage graph has a cycle; validate the spec first");
        return order.Select(i => spec.Stages[i]).ToList();
    }

    /// <summary>Kahn's algorithm over indices, lowest index first among ready stages; unknown names are ignored.</summary>
    /// <returns>Indices in run order; shorter than the input when a cycle blocks some stages.</returns>
    internal static List<int> Order(IReadOnlyList<(string Name, IReadOnlyList<string> Deps)> nodes)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++) index.TryAdd(nodes[i].Name, i);
        var done = new bool[nodes.Count];
        var order = new List<int>(nodes.Count);
        // n ≤ SpecLimits.MaxStages, so rescanning for the first ready stage (O(n²)) is simpler than a heap and just as fast.
        bool progressed = true;
        while (progressed)
        {
            progressed = false;
            for (int i = 0; i < nodes.Count; i++)
            {
                if (done[i]) continue;
                bool ready = nodes[i].Deps.All(d => !index.TryGetValue(d, out int j) || done[j]);
                if (!ready) continue;
                done[i] = true;
                order.Add(i);
                progressed = true;
                break;
            }
        }
        return order;
    }

    /// <summary>Every elementary cycle reachable by depth-first search, each as names ending where it started (a → b → a).</summary>
    /// <remarks>Each cycle is rotated to start at its earliest-declared stage so the report is stable.</remarks>
    internal static List<List<string>> FindCycles(IReadOnlyList<(string Name, IReadOnlyList<string> Deps)> nodes)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++) index.TryAdd(nodes[i].Name, i);
        var state = new byte[nodes.Count]; // 0 unvisited, 1 on the current path, 2 finished
        var path = new List<int>();
        var cycles = new List<List<string>>();
        var seen = new HashSet<string>();

        void Visit(int i)
        {
            state[i] = 1;
            path.Add(i);
            foreach (var dep in nodes[i].Deps)
            {
                if (!index.TryGetValue(dep, out int j)) continue;
                if (state[j] == 1)
                {
                    var loop = path.Skip(path.IndexOf(j)).ToList();
                    int start = loop.IndexOf(loop.Min());
                    var rotated = loop.Skip(start).Concat(loop.Take(start)).ToList();
                    // Edges point from a stage to what it needs; report in run direction (needed → needer) to read naturally.
                    rotated.Reverse();
                    int first = rotated.IndexOf(rotated.Min());
                    rotated = rotated.Skip(first).Concat(rotated.Take(first)).ToList();
                    var names = rotated.Select(k => nodes[k].Name).Append(nodes[rotated[0]].Name).ToList();
                    if (seen.Add(string.Join("\u0000", names))) cycles.Add(names);
                }
                else if (state[j] == 0)
                {
                    Visit(j);
                }
            }
            path.RemoveAt(path.Count - 1);
            state[i] = 2;
        }

        for (int i = 0; i < nodes.Count; i++)
        {
            if (state[i] == 0) Visit(i);
        }
        return cycles;
    }
}
