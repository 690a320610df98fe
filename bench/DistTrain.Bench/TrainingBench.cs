using DistTrain.Host;
using DistTrain.Execution;
using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Bench;

/// <summary>One measured configuration: seconds per optimizer step (median over the steady state) and examples per second.</summary>
/// <param name="ExposedReduceSeconds">
/// Median, per step, of the time rank 0 spent blocked in all-reduces (counts and gradients, including waiting for a
/// slower rank): the communication not hidden behind computation. Null where nothing is reduced (in-process runs).
/// </param>
/// <param name="CommSeconds">
/// Median, per step, of the time rank 0's all-reduces ran on any thread; above <paramref name="ExposedReduceSeconds"/>
/// when gradient buckets overlap backward (the difference is hidden).
/// </param>
/// <param name="GradientBucketMb">The stage's distributed.gradient_bucket_mb (0: one all-reduce after backward).</param>
/// <param name="Transport">How the workers' gradient frames travelled: "shm" (shared memory, the default between ranks on one host) or "tcp" (loopback).</param>
public sealed record StepTiming(string Name, int Workers, int Steps, double SecondsPerStep, double ExamplesPerSecond, double? ExposedReduceSeconds = null,
    double? CommSeconds = null, double? GradientBucketMb = null, string? Transport = null);

/// <summary>
/// `disttrain bench overhead` and `disttrain bench scaling`: the training step as DistTrain runs it, against a bare
/// TorchSharp loop of the same model, data and threads, all measured in one run on this machine.
/// </summary>
public static class TrainingBench
{
    /// <summary>The workload: a 2-layer GPT (1.45M parameters) on packed Brown sequences, global batch 16 × 64 tokens.</summary>
    public static string Spec(int steps, int workers, int batch = 16, double bucketMb = DistributedSpec.DefaultGradientBucketMb) => $$"""
        name: bench
        seed: 5
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: 2, hidden: 128, heads: 4, ffn: 512, max_len: 64, vocab_size: 8192, dropout: 0.0}
            data: {corpus: brown, seq_len: 64}
            train: {steps: {{steps}}, batch_size: {{batch}}, lr: 1.0e-3, warmup: 0, clip: 1.0}
            distributed: {workers: {{workers}}, aggregation: ring, gradient_bucket_mb: {{bucketMb.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}
        """;

    private static JobSpec Job(string yaml) => JobSpecs.Load(yaml).Spec ?? throw new InvalidOperationException("bench spec invalid");

    /// <summary>
    /// What a user would write by hand (model, AdamW, mean cross-entropy, backward, clip, step; no DistTrain engine)
    /// and DistTrain's own in-process step (sampler, trainer, gradient buffer), run in alternation, one step each,
    /// on the same model shape, data and one thread, so load from a neighbour hits both alike.
    /// </summary>
    public static (StepTiming Bare, StepTiming InProcess) BareAndInProcess(int steps, string runRoot, int batch = 16, int warmupSteps = 0)
    {
        var job = Job(Spec(warmupSteps + steps + 1, 1, batch));
        var (model, optimizer, data) = BareSetup(job);
        using var _ = model;
        using var __ = optimizer;
        var stage = job.Stages[0];
        using var session = new StageSession(job, stage, new StageArtifacts(runRoot, "inprocess", "lm"), CPU, LocalReducer.Instance, null);
        var bare = new List<double>();
        var ours = new List<double>();
        for (int step = 0; step < warmupSteps + steps; step++)
        {
            var clock = Stopwatch.StartNew();
            BareStep(model, optimizer, data, step, batch);
            if (step >= warmupSteps) bare.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            session.RunStep(step);   // never the last step of the stage, which also evaluates
            if (step >= warmupSteps) ours.Add(clock.Elapsed.TotalSeconds);
        }
        return (Summarise("bare TorchSharp loop", 1, batch, bare), Summarise("DistTrain in-process session", 1, batch, ours));
    }

    /// <summary>The bare loop alone (brackets the cluster measurement, which runs in another process).</summary>
    /// <param name="ready">Called once the model, optimizer and data are built, before the first step (a caller that starts several loops at once waits there).</param>
    /// <param name="afterStep">Called after each step, inside its timing (a caller that keeps several loops in lock step waits there).</param>
    /// <param name="warmupSteps">Steps run first and not timed.</param>
    public static StepTiming BareLoop(int steps, int batch = 16, Action? ready = null, Action? afterStep = null, int warmupSteps = 0)
    {
        var (model, optimizer, data) = BareSetup(Job(Spec(warmupSteps + steps, 1, batch)));
        using var _ = model;
        using var __ = optimizer;
        ready?.Invoke();
        var times = new List<double>();
        for (int step = 0; step < warmupSteps + steps; step++)
        {
            var clock = Stopwatch.StartNew();
            BareStep(model, optimizer, data, step, batch);
            afterStep?.Invoke();
            if (step >= warmupSteps) times.Add(clock.Elapsed.TotalSeconds);
        }
        return Summarise("bare TorchSharp loop", 1, batch, times);
    }

    /// <summary>The hand-written loop's model, optimizer and data: the spec's model shape on its packed Brown sequences, one thread.</summary>
    private static (GptLanguageModel Model, optim.Optimizer Optimizer, PackedLmDataset Data) BareSetup(JobSpec job)
    {
        torch.set_num_threads(1);
        var stage = job.Stages[0];
        var brown = DataCatalog.Shared.Brown((ulong)job.Seed, stage.Model.VocabSize);
        var model = (GptLanguageModel)ObjectiveFactory.BuildModule(job, stage, brown);
        return (model, optim.AdamW(model.parameters(), 1e-3, 0.9, 0.98, 1e-8, 0.01), new PackedLmDataset(brown.Train, stage.Data.SeqLen, 1));
    }

    private static void BareStep(GptLanguageModel model, optim.Optimizer optimizer, PackedLmDataset data, int step, int batch)
    {
        using var scope = NewDisposeScope();
        var rows = Enumerable.Range(step * batch, batch).Select(i => data[i % data.Count]).ToList();
        var ids = torch.tensor(rows.SelectMany(r => r.InputIds.Select(x => (long)x)).ToArray(), [batch, data.SeqLen]);   // (B, T)
        var mask = ids.ne(0);                                                                                         // (B, T)
        var logits = model.forward(ids, mask.to(ScalarType.Int64));                                                    // (B, T, V)
        var targets = ids.narrow(1, 1, data.SeqLen - 1).masked_fill(mask.narrow(1, 1, data.SeqLen - 1).logical_not(), -100);
        var loss = nn.functional.cross_entropy(logits.narrow(1, 0, data.SeqLen - 1).reshape(-1, logits.shape[2]), targets.reshape(-1), ignore_index: -100);
        optimizer.zero_grad();
        loss.backward();
        nn.utils.clip_grad_norm_(model.parameters(), 1.0);
        optimizer.step();
    }

    /// <summary>
    /// A real cluster job (coordinator here, workers as processes, 1 torch thread each): wall time between the
    /// ends of rank 0's consecutive steps, stamped by rank 0 (<see cref="StepCompleted.EndedTicks"/>).
    /// <paramref name="batch"/> is the GLOBAL batch, split evenly over the workers. The job runs
    /// <paramref name="warmupSteps"/> more steps first, untimed: a fresh worker process spends its first seconds
    /// compiling .NET code on a background thread (docs/benchmarks.md), which on a machine with no spare core takes
    /// CPU from the training threads.
    /// </summary>
    public static async Task<StepTiming> ClusterAsync(int steps, int workers, string runRoot, ExecutableCommand exe, int batch = 16, string? label = null,
        double bucketMb = DistributedSpec.DefaultGradientBucketMb, int warmupSteps = 0, string transport = "shm")
    {
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(workers, runRoot, exe, TorchThreads: 1) { SharedMemory = transport == "shm" });
        // Rank 0's own clock at the end of each step: reports reach the coordinator in batches (StepsCompleted).
        var stamps = new List<(int Step, double Seconds, double Reduce, double Comm)>();
        Action<object> record = e =>
        {
            if (e is StepCompleted { Rank: 0 } s) lock (stamps) stamps.Add((s.Step, s.EndedTicks / (double)TimeSpan.TicksPerSecond, s.ReduceSeconds, s.CommSeconds));
        };
        cluster.System.ActorOf(Props.Create(() => new EventRecorder(record)));
        var result = (await new ClusterJobRunner(cluster.Jobs).RunAsync(Spec(warmupSteps + steps, workers, batch, bucketMb), quick: false)).Stages.Single();
        if (!result.Succeeded) throw new InvalidOperationException(result.Summary);
        List<double> intervals, reduce, comm;
        lock (stamps)
        {
            // The last warm-up step's stamp starts the first timed interval.
            var ordered = stamps.Where(s => s.Step >= warmupSteps - 1).OrderBy(s => s.Step).ToList();
            int unstamped = ordered.FindIndex(s => s.Seconds <= 0);
            if (unstamped >= 0) throw new InvalidOperationException($"step {ordered[unstamped].Step}'s report carries no end time");
            // The last step also evaluates, so the interval ending at it is left out (and its reduce time with it).
            intervals = ordered.Zip(ordered.Skip(1), (a, b) => b.Seconds - a.Seconds).SkipLast(1).ToList();
            reduce = ordered.Skip(1).SkipLast(1).Select(s => s.Reduce).ToList();
            comm = ordered.Skip(1).SkipLast(1).Select(s => s.Comm).ToList();
        }
        if (intervals.Count == 0) throw new InvalidOperationException($"too few steps ({steps}) to time");
        var timing = Summarise(label ?? $"cluster, {workers} worker(s) × 1 thread", workers, batch, intervals);
        return workers > 1 ? timing with { ExposedReduceSeconds = Median(reduce), CommSeconds = Median(comm), GradientBucketMb = bucketMb, Transport = transport } : timing;
    }

    private static double Median(IReadOnlyList<double> times)
    {
        var steady = times.Skip(Math.Min(5, times.Count / 4)).Order().ToList();
        return steady[steady.Count / 2];
    }

    /// <summary>
    /// Weak scaling, the headline: 1, 2, ... workers at the same per-rank batch, so each rank does the same work
    /// and efficiency = 1-worker step time / N-worker step time (1.0 = communication and coordination are free).
    /// Every N &gt; 1 runs once per gradient bucket size (0 = one all-reduce after backward; more = buckets overlapping
    /// backward) and per transport (shm, tcp). The configurations run in rounds, interleaved (1, 2, 3, 1, 2, 3, ...), and each figure is the median
    /// of the rounds' medians, so a neighbour's load that comes and goes hits every configuration alike.
    /// </summary>
    public static async Task<IReadOnlyList<StepTiming>> WeakScalingAsync(int steps, IReadOnlyList<int> workerCounts, int perRankBatch,
        int rounds, string runRoot, ExecutableCommand exe, IReadOnlyList<double> bucketMbs, int warmupSteps = 0, IReadOnlyList<string>? transports = null)
    {
        transports ??= ["shm"];
        var configurations = workerCounts.SelectMany(n => n == 1 ? [(n, bucketMbs[0], transports[0])]
            : bucketMbs.SelectMany(mb => transports.Select(t => (n, mb, t)))).ToList();
        var runs = configurations.ToDictionary(c => c, _ => new List<StepTiming>());
        for (int round = 0; round < rounds; round++)
            foreach (var (n, mb, t) in configurations)
                runs[(n, mb, t)].Add(await ClusterAsync(steps, n, runRoot, exe, batch: perRankBatch * n, bucketMb: mb, warmupSteps: warmupSteps, transport: t));
        return configurations.Select(c =>
        {
            var (n, mb, t) = c;
            var r = runs[c];
            double step = MedianOf(r.Select(x => x.SecondsPerStep));
            string name = $"cluster, {n} × batch {perRankBatch}" + (n > 1 && bucketMbs.Count > 1 ? $", buckets {mb} MB" : "")
                + (n > 1 && transports.Count > 1 ? $", {t}" : "") + (n > Environment.ProcessorCount ? " (oversubscribed)" : "");
            return new StepTiming(name, n, r.Sum(x => x.Steps), step, perRankBatch * n / step,
                n > 1 ? MedianOf(r.Select(x => x.ExposedReduceSeconds!.Value)) : null,
                n > 1 ? MedianOf(r.Select(x => x.CommSeconds!.Value)) : null, n > 1 ? mb : null, n > 1 ? t : null);
        }).ToList();
    }

    internal static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static StepTiming Summarise(string name, int workers, int batch, IReadOnlyList<double> times)
    {
        // The first steps pay for JIT and allocator warm-up; the median resists a noisy neighbour.
        double median = Median(times);
        return new StepTiming(name, workers, times.Count, median, batch / median);
    }

    private sealed class EventRecorder : ReceiveActor
    {
        public EventRecorder(Action<object> onEvent) => ReceiveAny(onEvent);
        protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(StepCompleted));
    }

    /// <summary>One line per timing, for the text (non-JSON) output of the bench commands.</summary>
    public static string Table(IEnumerable<StepTiming> rows) =>
        string.Join("\n", rows.Select(x => $"{x.Name,-44} {x.SecondsPerStep * 1000,8:F1} ms/step {x.ExamplesPerSecond,8:F1} ex/s"
            + (x.ExposedReduceSeconds is { } r ? $" {r * 1000,8:F1} ms exposed all-reduce" : "")
            + (x.CommSeconds is { } c ? $" {c * 1000,8:F1} ms all-reduce in total" : "")));

    public static string ToJson(object value) => JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
}
