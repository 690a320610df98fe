using DistTrain.Cluster.Hosting;

namespace DistTrain.Bench;

/// <summary>One row of `bench ceiling`: N independent bare loops at once, each one's step time (the mean over the N processes).</summary>
public sealed record CeilingRow(int Processes, bool LockStep, double SecondsPerStep, double Slowest, double Efficiency);

/// <summary>
/// `disttrain bench ceiling`: what this machine allows data parallelism at best. It runs the bare TorchSharp loop of
/// `bench overhead` (same model, batch, one torch thread) in 1, then N independent processes at once, with no
/// DistTrain and no communication between them, and reports efficiency = 1-process step time ÷ step time of each of N.
/// That is the ceiling for `bench scaling`'s weak_scaling_efficiency on the same machine: what N processes lose to
/// each other through shared cores, caches, memory bandwidth and a hypervisor, before any gradient is exchanged.
/// With lock step, the loops also wait for each other after every step (through this process, no data exchanged), as
/// data-parallel ranks do at their all-reduce: their phases (matrix products, softmax, optimizer) then coincide, as
/// they do in a cluster, instead of drifting apart.
/// Children start with the allocator settings the cluster's workers get (<see cref="ExecutableCommand.AllocatorEnvironment"/>),
/// build everything, report ready, and start their loops together. Rounds interleave the configurations.
/// </summary>
public static class CeilingBench
{
    public const string ChildName = "ceiling-child";

    public static async Task<IReadOnlyList<CeilingRow>> RunAsync(IReadOnlyList<int> processCounts, int steps, int batch, int rounds, CancellationToken ct,
        bool lockStep = true, int warmupSteps = 0)
    {
        var configurations = processCounts.SelectMany(n => n == processCounts.Min() || !lockStep ? [(n, false)] : new[] { (n, false), (n, true) }).ToList();
        var perRound = configurations.ToDictionary(c => c, _ => new List<(double Mean, double Slowest)>());
        for (int round = 0; round < rounds; round++)
            foreach (var c in configurations)
                perRound[c].Add(await RunOnceAsync(c.n, c.Item2, steps, batch, warmupSteps, ct));
        double baseline = TrainingBench.MedianOf(perRound[configurations[0]].Select(r => r.Mean));
        return configurations.Select(c =>
        {
            double step = TrainingBench.MedianOf(perRound[c].Select(r => r.Mean));
            return new CeilingRow(c.n, c.Item2, step, TrainingBench.MedianOf(perRound[c].Select(r => r.Slowest)), baseline / step);
        }).ToList();
    }

    private static async Task<(double Mean, double Slowest)> RunOnceAsync(int n, bool lockStep, int steps, int batch, int warmupSteps, CancellationToken ct)
    {
        using var children = new ChildSet();
        for (int i = 0; i < n; i++)
        {
            var psi = AllReduceBench.Self(ChildName, "--steps", steps.ToString(), "--batch", batch.ToString(), "--lock-step", lockStep ? "true" : "false",
                "--warmup-steps", warmupSteps.ToString())();
            foreach (var (name, value) in ExecutableCommand.AllocatorEnvironment)
                if (Environment.GetEnvironmentVariable(name) is null) psi.Environment[name] = value;
            children.Start(psi);
        }
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromMinutes(10));
        for (int i = 0; i < n; i++)
            if (await children.ReadLineAsync(i, bound.Token) != "ready") throw new InvalidOperationException($"ceiling child {i} did not report ready");
        for (int i = 0; i < n; i++) await children.WriteLineAsync(i, "go");
        if (lockStep)
            for (int step = 0; step < warmupSteps + steps; step++)
            {
                // Every loop's "done" for this step, then "go" to all: a barrier, as an all-reduce is.
                for (int i = 0; i < n; i++)
                    if (await children.ReadLineAsync(i, bound.Token) != "done") throw new InvalidOperationException($"ceiling child {i} broke lock step");
                for (int i = 0; i < n; i++) await children.WriteLineAsync(i, "go");
            }
        var timings = new StepTiming[n];
        for (int i = 0; i < n; i++) timings[i] = BenchWire.Read<StepTiming>(await children.ReadLineAsync(i, bound.Token));
        await children.WaitForExitAsync(bound.Token);
        return (timings.Average(t => t.SecondsPerStep), timings.Max(t => t.SecondsPerStep));
    }

    /// <summary>The child: build, say "ready", wait for "go" on stdin, run the loop, print its timing as one JSON line.</summary>
    public static int RunChild(int steps, int batch, bool lockStep, int warmupSteps)
    {
        void Barrier(string say)
        {
            Console.Out.WriteLine(say);
            Console.Out.Flush();
            if (Console.In.ReadLine() != "go") throw new InvalidOperationException("the parent went away");
        }
        var timing = TrainingBench.BareLoop(steps, batch, ready: () => Barrier("ready"), afterStep: lockStep ? () => Barrier("done") : null, warmupSteps: warmupSteps);
        Console.Out.WriteLine(BenchWire.Write(timing));
        Console.Out.Flush();
        return 0;
    }

    public static string Table(IEnumerable<CeilingRow> rows) =>
        string.Join("\n", rows.Select(r => $"{r.Processes} bare loop(s) at once{(r.LockStep ? ", in lock step" : "              ")} {r.SecondsPerStep * 1000,8:F1} ms/step (slowest {r.Slowest * 1000,6:F1}) efficiency {r.Efficiency:F3}"));
}
