using System.CommandLine;
using DistTrain.Cluster.Hosting;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Bench;

/// <summary>
/// `disttrain bench ...`: benchmarks whose results go to docs/benchmarks.md. The `disttrain` CLI starts this executable
/// (disttrain-bench) with the arguments after `bench`; cluster benchmarks start their nodes with that same CLI
/// (<paramref name="disttrain"/>), the all-reduce bench starts its ranks with this executable.
/// </summary>
/// <remarks>
///   disttrain bench allreduce [--json] [--sizes 1,4,16,64,256] [--procs 2,3,4] [--modes ring,coordinator] [--wire fp32|bf16|fp16]
///                                   spawns one child per rank on loopback; ours vs raw TCP in the same run
///   disttrain bench overhead [--json] [--steps 40]   a 1-worker cluster job and the in-process step vs a bare TorchSharp loop
///   disttrain bench scaling [--json] [--workers 1,2,3] [--steps 30] [--rounds 2]    weak scaling (same per-rank batch), then strong
///   disttrain bench ceiling [--json] [--processes 1,2] [--steps 40] [--rounds 2]   independent bare loops side by side: weak scaling's ceiling here
///   disttrain bench startup [--json] [--workers 2] [--runs 5]
///                                   local-cluster start-up (coordinator up, every worker registered), TLS remoting vs plaintext
///   disttrain bench data [--json] [--gb 1] [--small-mb 10] [--steps 200] [--dir DIR] [--keep]
///                                   a ~10 MB and a ≥ 1 GB corpus of your own: prepare throughput, worker RSS while training
/// </remarks>
public static class BenchCommand
{
    /// <param name="disttrain">The `disttrain` executable that launched this one (its nodes run `disttrain node` and `local`).</param>
    public static RootCommand Create(Func<ExecutableCommand> disttrain)
    {
        return new RootCommand("Run benchmarks (results: docs/benchmarks.md).")
            { AllReduce(), AllReduceChild(), Overhead(disttrain), Scaling(disttrain), Ceiling(), CeilingChild(), Data(disttrain), Startup(disttrain) };
    }

    /// <summary>`bench data`: prepare a small and a large generated corpus, train on each on 2 workers, compare worker RSS.</summary>
    private static Command Data(Func<ExecutableCommand> disttrain)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var gb = new Option<double>("--gb") { Description = "Size of the large corpus in GB.", DefaultValueFactory = _ => 1.0 };
        var smallMb = new Option<int>("--small-mb") { Description = "Size of the small corpus in MB.", DefaultValueFactory = _ => 10 };
        var steps = new Option<int>("--steps") { Description = "Training steps on each corpus.", DefaultValueFactory = _ => 200 };
        var dir = new Option<DirectoryInfo?>("--dir") { Description = "Work folder for the corpora, shards and runs (default: a new temporary folder)." };
        var keep = new Option<bool>("--keep") { Description = "Keep the work folder." };
        var cmd = new Command("data", "Prepare a ~10 MB and a >= 1 GB corpus, train 200 steps on each on 2 workers, and compare worker RSS.") { json, gb, smallMb, steps, dir, keep };
        cmd.SetAction(async (r, ct) =>
        {
            string root = r.GetValue(dir)?.FullName ?? Directory.CreateTempSubdirectory("disttrain-bench-data-").FullName;
            using var stdout = new JsonStdout(true);
            try
            {
                var result = await OwnDataBench.RunAsync(r.GetValue(gb), r.GetValue(smallMb), r.GetValue(steps), 2, root, disttrain());
                stdout.WriteLine(TrainingBench.ToJson(result));
                return 0;
            }
            finally
            {
                if (!r.GetValue(keep)) Directory.Delete(root, recursive: true);
            }
        });
        return cmd;
    }

    /// <summary>
    /// Untimed steps before every measured run. A fresh `disttrain node` spends its first 10–20 s compiling .NET code
    /// on a background thread; on a machine whose every core runs a worker, that thread takes CPU from training
    /// (docs/benchmarks.md). A training job runs for hours, so the bench measures after it, as PyTorch's own do.
    /// </summary>
    private static Option<int> WarmupSteps()
    {
        var option = new Option<int>("--warmup-steps")
        {
            Description = "Untimed steps before each measurement (JIT and allocator warm-up of the worker processes).",
            DefaultValueFactory = _ => 100,
        };
        option.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--warmup-steps must be >= 0"); });
        return option;
    }

    /// <summary>`bench overhead`: a 1-worker cluster job and the in-process session against a bare TorchSharp loop.</summary>
    private static Command Overhead(Func<ExecutableCommand> disttrain)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var steps = new Option<int>("--steps") { Description = "Steps per measurement.", DefaultValueFactory = _ => 40 };
        var warmup = WarmupSteps();
        var cmd = new Command("overhead", "Step time of DistTrain (in-process and a 1-worker cluster) over a bare TorchSharp loop, 1 thread each.") { json, steps, warmup };
        cmd.SetAction(async (r, ct) =>
        {
            int n = r.GetValue(steps), w = r.GetValue(warmup);
            using var stdout = new JsonStdout(r.GetValue(json));
            string root = Directory.CreateTempSubdirectory("disttrain-bench-").FullName;
            try
            {
                var (bare, inProcess) = TrainingBench.BareAndInProcess(n, root, warmupSteps: w);
                // The cluster runs in other processes, so it cannot alternate step by step: bare loops before and after
                // bracket it, each in a child process started like a worker (the same allocator settings), not in this one.
                var before = await BareChildAsync(n, w, ct);
                var cluster = await TrainingBench.ClusterAsync(n, 1, root, disttrain(), warmupSteps: w);
                var after = await BareChildAsync(n, w, ct);
                double bracket = (before.SecondsPerStep + after.SecondsPerStep) / 2;
                var result = new
                {
                    load_average = LoadAverage(),
                    rows = new[] { bare, inProcess, before, cluster, after },
                    throughput_ratio_vs_bare = bare.SecondsPerStep / inProcess.SecondsPerStep,
                    overhead_ratio = cluster.SecondsPerStep / bracket,
                };
                stdout.WriteLine(r.GetValue(json) ? TrainingBench.ToJson(result)
                    : $"load average {result.load_average}\n" + TrainingBench.Table(result.rows)
                      + $"\nin-process throughput / bare (alternating steps) = {result.throughput_ratio_vs_bare:F3}\noverhead_ratio (1-worker cluster / bare before and after) = {result.overhead_ratio:F3}");
                return 0;
            }
            finally { Directory.Delete(root, recursive: true); }
        });
        return cmd;
    }

    /// <summary>The bare loop in one child process (as `bench ceiling` runs it), timed like the cluster's worker.</summary>
    private static async Task<StepTiming> BareChildAsync(int steps, int warmupSteps, CancellationToken ct)
    {
        var row = (await CeilingBench.RunAsync([1], steps, 16, 1, ct, lockStep: false, warmupSteps: warmupSteps)).Single();
        return new StepTiming("bare TorchSharp loop, child process", 1, steps, row.SecondsPerStep, 16 / row.SecondsPerStep);
    }

    /// <summary>
    /// `bench scaling`: weak scaling (1, 2, 3 workers at the same per-rank batch; the headline) and strong scaling
    /// (1 worker at the global batch of 2 against 2 workers at half each; a second figure, see docs/benchmarks.md).
    /// </summary>
    private static Command Scaling(Func<ExecutableCommand> disttrain)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var steps = new Option<int>("--steps") { Description = "Steps per measurement.", DefaultValueFactory = _ => 30 };
        var rounds = new Option<int>("--rounds") { Description = "Interleaved rounds of every configuration (figures are medians over rounds).", DefaultValueFactory = _ => 2 };
        var workers = new Option<string>("--workers") { Description = "Worker counts for weak scaling (1 is the baseline).", DefaultValueFactory = _ => "1,2,3" };
        var batch = new Option<int>("--batch") { Description = "Per-rank batch.", DefaultValueFactory = _ => 16 };
        var buckets = new Option<string>("--gradient-bucket-mb")
        {
            Description = "Gradient bucket sizes (MB) to run every N > 1 with, interleaved; 0 = one all-reduce after backward.",
            DefaultValueFactory = _ => "0,0.5",
        };
        var transport = new Option<string>("--transport")
        {
            Description = "How the workers exchange gradients, run every N > 1 with each, interleaved: shm (shared memory, the default between ranks on one host), tcp (loopback).",
            DefaultValueFactory = _ => "shm",
        };
        var strong = new Option<bool>("--strong") { Description = "Also measure strong scaling (1 worker at 2× the batch against 2 workers).", DefaultValueFactory = _ => true };
        var ceiling = new Option<bool>("--ceiling")
        {
            Description = "Also run the same counts of independent bare loops side by side (`bench ceiling`): the most weak scaling can reach here.",
            DefaultValueFactory = _ => true,
        };
        var warmup = WarmupSteps();
        var cmd = new Command("scaling", "Weak scaling of the cluster (1 torch thread per worker, same per-rank batch), plus strong scaling as a second figure.")
            { json, steps, rounds, workers, batch, buckets, transport, strong, ceiling, warmup };
        cmd.SetAction(async (r, ct) =>
        {
            int n = r.GetValue(steps), perRank = r.GetValue(batch), k = r.GetValue(rounds), w = r.GetValue(warmup);
            var counts = Ints(r.GetValue(workers)!);
            if (n < 8) throw new ArgumentException("--steps must be at least 8 (the first steps are warm-up)");
            if (k < 1 || perRank < 1) throw new ArgumentException("--rounds and --batch must be positive");
            if (counts.Length == 0 || counts[0] != 1 || counts.Any(c => c < 1) || counts.Distinct().Count() != counts.Length)
                throw new ArgumentException("--workers must start with 1 (the baseline) and list distinct positive counts");
            var bucketMbs = r.GetValue(buckets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            if (bucketMbs.Length == 0 || bucketMbs.Any(b => b < 0) || bucketMbs.Distinct().Count() != bucketMbs.Length)
                throw new ArgumentException("--gradient-bucket-mb must list distinct sizes >= 0");
            var transports = r.GetValue(transport)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (transports.Length == 0 || transports.Any(t => t is not ("shm" or "tcp")) || transports.Distinct().Count() != transports.Length)
                throw new ArgumentException("--transport must list distinct values of shm, tcp");
            using var stdout = new JsonStdout(r.GetValue(json));
            string root = Directory.CreateTempSubdirectory("disttrain-bench-").FullName;
            try
            {
                var weak = await TrainingBench.WeakScalingAsync(n, counts, perRank, k, root, disttrain(), bucketMbs, w, transports);
                var efficiency = weak.Skip(1).ToDictionary(
                    w => w.Workers + (bucketMbs.Length > 1 ? $"@{w.GradientBucketMb}MB" : "") + (transports.Length > 1 ? $"@{w.Transport}" : ""),
                    w => weak[0].SecondsPerStep / w.SecondsPerStep);
                var ceilingRows = r.GetValue(ceiling) ? await CeilingBench.RunAsync(counts, Math.Max(n, 20), perRank, k, ct, warmupSteps: w) : [];
                var ceilingEfficiency = ceilingRows.Skip(1).ToDictionary(c => c.Processes + (c.LockStep ? "@lockstep" : ""), c => c.Efficiency);
                StepTiming[] strongRows = [];
                if (r.GetValue(strong))
                {
                    var one = await TrainingBench.ClusterAsync(n, 1, root, disttrain(), batch: 2 * perRank, label: $"cluster, 1 × batch {2 * perRank}", warmupSteps: w);
                    var two = await TrainingBench.ClusterAsync(n, 2, root, disttrain(), batch: 2 * perRank, label: $"cluster, 2 × batch {perRank}", warmupSteps: w);
                    strongRows = [one, two];
                }
                var result = new
                {
                    processors = Environment.ProcessorCount,
                    load_average = LoadAverage(),
                    per_rank_batch = perRank,
                    rounds = k,
                    weak = weak,
                    weak_scaling_efficiency = efficiency,
                    ceiling = ceilingRows,
                    ceiling_efficiency = ceilingEfficiency,
                    strong = strongRows,
                    strong_scaling_2x1_vs_1x1 = strongRows.Length == 2 ? strongRows[1].ExamplesPerSecond / strongRows[0].ExamplesPerSecond : (double?)null,
                };
                stdout.WriteLine(r.GetValue(json) ? TrainingBench.ToJson(result)
                    : $"load average {result.load_average}, {result.processors} processors\n"
                      + "weak scaling (same per-rank batch):\n" + TrainingBench.Table(weak)
                      + string.Concat(efficiency.Select(e => $"\nweak_scaling_efficiency[{e.Key}] = {e.Value:F3}"))
                      + (ceilingRows.Count > 0
                          ? "\nthe machine's ceiling (independent bare TorchSharp loops side by side, no DistTrain, no communication):\n"
                            + CeilingBench.Table(ceilingRows) + string.Concat(ceilingEfficiency.Select(e => $"\nceiling_efficiency[{e.Key}] = {e.Value:F3}"))
                          : "")
                      + (strongRows.Length == 2
                          ? "\nstrong scaling (same global batch; the 1-worker run pays for 2x larger activations, see docs/benchmarks.md):\n"
                            + TrainingBench.Table(strongRows) + $"\nstrong_scaling_2x1_vs_1x1 = {result.strong_scaling_2x1_vs_1x1:F3}"
                          : ""));
                return 0;
            }
            finally { Directory.Delete(root, recursive: true); }
        });
        return cmd;
    }

    /// <summary>`bench startup`: what remoting's mutual TLS costs a cluster's start, plaintext and TLS runs interleaved.</summary>
    private static Command Startup(Func<ExecutableCommand> disttrain)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var workers = new Option<int>("--workers") { Description = "Worker processes per cluster.", DefaultValueFactory = _ => 2 };
        var runs = new Option<int>("--runs") { Description = "Starts of each kind (interleaved).", DefaultValueFactory = _ => 5 };
        var cmd = new Command("startup", "Local-cluster start-up time with TLS remoting (the default) and without.") { json, workers, runs };
        cmd.SetAction(async (r, ct) =>
        {
            using var stdout = new JsonStdout(r.GetValue(json));
            string root = Directory.CreateTempSubdirectory("disttrain-bench-").FullName;
            try
            {
                var result = await StartupBench.RunAsync(r.GetValue(workers), r.GetValue(runs), root, disttrain(), ct);
                stdout.WriteLine(r.GetValue(json) ? TrainingBench.ToJson(result) : StartupBench.Table(result));
                return 0;
            }
            finally { Directory.Delete(root, recursive: true); }
        });
        return cmd;
    }

    /// <summary>The 1/5/15-minute load averages, printed next to every timing (the machine is shared).</summary>
    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private const string ChildName = "allreduce-child";

    private static Command AllReduce()
    {
        var json = new Option<bool>("--json") { Description = "Print the rows as JSON instead of a Markdown table." };
        var sizes = new Option<string>("--sizes") { Description = "Buffer sizes in MB.", DefaultValueFactory = _ => "1,4,16,64,256" };
        var procs = new Option<string>("--procs") { Description = "Process (rank) counts.", DefaultValueFactory = _ => "2,3,4" };
        var modes = new Option<string>("--modes") { Description = "Algorithms: ring, coordinator.", DefaultValueFactory = _ => "ring,coordinator" };
        var wire = new Option<string>("--wire") { Description = "Wire format: fp32, bf16, fp16.", DefaultValueFactory = _ => "fp32" };
        var integrity = new Option<string>("--integrity")
        {
            Description = "Frame integrity modes to compare side by side: none, aes-gmac, hmac-sha256 (default: the data plane's default).",
            DefaultValueFactory = _ => new DataPlaneOptions().Integrity.Name(),
        };
        var transport = new Option<string>("--transport")
        {
            Description = "Transports to compare side by side: shm (shared memory, the default between ranks on one host), tcp (loopback).",
            DefaultValueFactory = _ => "shm",
        };
        var cmd = new Command("allreduce", "All-reduce bandwidth, ring vs coordinator, against raw TCP between the same processes.")
            { json, sizes, procs, modes, wire, integrity, transport };
        cmd.SetAction(async (r, ct) =>
        {
            var options = new AllReduceBenchOptions
            {
                SizesMb = Ints(r.GetValue(sizes)!),
                Procs = Ints(r.GetValue(procs)!),
                Modes = r.GetValue(modes)!.Split(',').Select(m => Enum.Parse<AllReduceAlgorithm>(m.Trim(), ignoreCase: true)).ToArray(),
                Wire = r.GetValue(wire) switch { "bf16" => WireFormat.BFloat16, "fp16" => WireFormat.Float16, _ => WireFormat.Float32 },
                Integrity = r.GetValue(integrity)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(FrameIntegrities.Parse).ToArray(),
                Transports = r.GetValue(transport)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
            };
            if (options.Transports.Count == 0 || options.Transports.Any(t => t is not ("shm" or "tcp")) || options.Transports.Distinct().Count() != options.Transports.Count)
                throw new ArgumentException("--transport must list distinct values of shm, tcp");
            bool asJson = r.GetValue(json);
            if (!asJson) Console.WriteLine(AllReduceBench.TableHeader());
            var rows = await AllReduceBench.RunAsync(options, AllReduceBench.Self(ChildName), asJson ? TextWriter.Null : Console.Out, ct);
            if (asJson) Console.WriteLine(AllReduceBench.ToJson(rows));
            return 0;
        });
        return cmd;
    }

    /// <summary>`bench ceiling`: 1, then N independent bare loops at once; the most weak scaling can reach on this machine.</summary>
    private static Command Ceiling()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var steps = new Option<int>("--steps") { Description = "Steps per loop.", DefaultValueFactory = _ => 40 };
        var rounds = new Option<int>("--rounds") { Description = "Interleaved rounds of every configuration (figures are medians over rounds).", DefaultValueFactory = _ => 2 };
        var processes = new Option<string>("--processes") { Description = "Process counts (the smallest is the baseline).", DefaultValueFactory = _ => "1,2" };
        var batch = new Option<int>("--batch") { Description = "Batch per process.", DefaultValueFactory = _ => 16 };
        var warmup = WarmupSteps();
        var cmd = new Command("ceiling", "Independent bare TorchSharp loops side by side (no DistTrain, no communication): the machine's ceiling for weak scaling.")
            { json, steps, rounds, processes, batch, warmup };
        cmd.SetAction(async (r, ct) =>
        {
            using var stdout = new JsonStdout(r.GetValue(json));
            var rows = await CeilingBench.RunAsync(Ints(r.GetValue(processes)!), r.GetValue(steps), r.GetValue(batch), r.GetValue(rounds), ct,
                warmupSteps: r.GetValue(warmup));
            stdout.WriteLine(r.GetValue(json)
                ? TrainingBench.ToJson(new { rows, ceiling_efficiency = rows.ToDictionary(x => x.Processes + (x.LockStep ? "@lockstep" : ""), x => x.Efficiency) })
                : CeilingBench.Table(rows));
            return 0;
        });
        return cmd;
    }

    /// <summary>One loop of `bench ceiling`, started by it; not for people.</summary>
    private static Command CeilingChild()
    {
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 40 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var lockStep = new Option<bool>("--lock-step");
        var warmup = new Option<int>("--warmup-steps");
        var cmd = new Command(CeilingBench.ChildName, "Internal: one loop of `bench ceiling`.") { Hidden = true };
        cmd.Options.Add(steps);
        cmd.Options.Add(batch);
        cmd.Options.Add(lockStep);
        cmd.Options.Add(warmup);
        cmd.SetAction(r => CeilingBench.RunChild(r.GetValue(steps), r.GetValue(batch), r.GetValue(lockStep), r.GetValue(warmup)));
        return cmd;
    }

    /// <summary>One rank of `bench allreduce`, started by it; not for people.</summary>
    private static Command AllReduceChild()
    {
        var cmd = new Command(ChildName, "Internal: one rank of `bench allreduce`.") { Hidden = true };
        cmd.SetAction(async (_, _) => await AllReduceBenchChild.RunAsync(Console.In, Console.Out));
        return cmd;
    }

    private static int[] Ints(string csv) => csv.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s.Trim())).ToArray();

    /// <summary>
    /// With JSON output, stdout carries the JSON alone: whatever the runs print meanwhile (Akka's log lines from the
    /// in-process coordinator) goes to stderr until disposed. Without it, nothing moves.
    /// </summary>
    private sealed class JsonStdout : IDisposable
    {
        private readonly TextWriter _stdout = Console.Out;

        public JsonStdout(bool json)
        {
            if (json) Console.SetOut(Console.Error);
        }

        public void WriteLine(string text) => _stdout.WriteLine(text);

        public void Dispose() => Console.SetOut(_stdout);
    }
}
