using System.CommandLine;
using DistTrain.Bench;
using DistTrain.Cluster.Hosting;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain bench ...`: benchmarks whose results go to docs/benchmarks.md. The work is done in DistTrain.Bench.</summary>
/// <remarks>
///   disttrain bench allreduce [--json] [--sizes 1,4,16,64,256] [--procs 2,3,4] [--modes ring,coordinator] [--wire fp32|bf16|fp16]
///                                   spawns one child per rank on loopback; ours vs raw TCP in the same run
///   disttrain bench overhead [--json] [--steps 40]   a 1-worker cluster job and the in-process step vs a bare TorchSharp loop
///   disttrain bench scaling [--json] [--steps 40]    2 workers × 1 thread vs 1 worker × 1 thread
/// </remarks>
public static class BenchCommand
{
    public static Command Create() => new("bench", "Run benchmarks (results: docs/benchmarks.md).") { AllReduce(), AllReduceChild(), Overhead(), Scaling() };

    /// <summary>`bench overhead`: a 1-worker cluster job and the in-process session against a bare TorchSharp loop.</summary>
    private static Command Overhead()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var steps = new Option<int>("--steps") { Description = "Steps per measurement.", DefaultValueFactory = _ => 40 };
        var cmd = new Command("overhead", "Step time of DistTrain (in-process and a 1-worker cluster) over a bare TorchSharp loop, 1 thread each.") { json, steps };
        cmd.SetAction(async (r, ct) =>
        {
            int n = r.GetValue(steps);
            string root = Directory.CreateTempSubdirectory("disttrain-bench-").FullName;
            try
            {
                var (bare, inProcess) = TrainingBench.BareAndInProcess(n, root);
                // The cluster runs in other processes, so it cannot alternate step by step: bare loops before and after bracket it.
                var before = TrainingBench.BareLoop(n);
                var cluster = await TrainingBench.ClusterAsync(n, 1, root, ExecutableCommand.Self());
                var after = TrainingBench.BareLoop(n);
                double bracket = (before.SecondsPerStep + after.SecondsPerStep) / 2;
                var result = new
                {
                    rows = new[] { bare, inProcess, before, cluster, after },
                    throughput_ratio_vs_bare = bare.SecondsPerStep / inProcess.SecondsPerStep,
                    overhead_ratio = cluster.SecondsPerStep / bracket,
                };
                Console.WriteLine(r.GetValue(json) ? TrainingBench.ToJson(result)
                    : TrainingBench.Table(result.rows)
                      + $"\nin-process throughput / bare (alternating steps) = {result.throughput_ratio_vs_bare:F3}\noverhead_ratio (1-worker cluster / bare before and after) = {result.overhead_ratio:F3}");
                return 0;
            }
            finally { Directory.Delete(root, recursive: true); }
        });
        return cmd;
    }

    /// <summary>`bench scaling`: throughput of 2 workers × 1 thread over 1 worker × 1 thread, same global batch.</summary>
    private static Command Scaling()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var steps = new Option<int>("--steps") { Description = "Steps per measurement.", DefaultValueFactory = _ => 40 };
        var cmd = new Command("scaling", "Throughput of a 2-worker cluster over a 1-worker cluster (1 torch thread per worker).") { json, steps };
        cmd.SetAction(async (r, ct) =>
        {
            int n = r.GetValue(steps);
            string root = Directory.CreateTempSubdirectory("disttrain-bench-").FullName;
            try
            {
                var one = await TrainingBench.ClusterAsync(n, 1, root, ExecutableCommand.Self(), batch: 32);
                var two = await TrainingBench.ClusterAsync(n, 2, root, ExecutableCommand.Self(), batch: 32);
                var result = new { rows = new[] { one, two }, scaling_2x1_vs_1x1 = two.ExamplesPerSecond / one.ExamplesPerSecond };
                Console.WriteLine(r.GetValue(json) ? TrainingBench.ToJson(result)
                    : TrainingBench.Table(result.rows)
                      + $"\nscaling_2x1_vs_1x1 = {result.scaling_2x1_vs_1x1:F3}");
                return 0;
            }
            finally { Directory.Delete(root, recursive: true); }
        });
        return cmd;
    }

    private const string ChildName = "allreduce-child";

    private static Command AllReduce()
    {
        var json = new Option<bool>("--json") { Description = "Print the rows as JSON instead of a Markdown table." };
        var sizes = new Option<string>("--sizes") { Description = "Buffer sizes in MB.", DefaultValueFactory = _ => "1,4,16,64,256" };
        var procs = new Option<string>("--procs") { Description = "Process (rank) counts.", DefaultValueFactory = _ => "2,3,4" };
        var modes = new Option<string>("--modes") { Description = "Algorithms: ring, coordinator.", DefaultValueFactory = _ => "ring,coordinator" };
        var wire = new Option<string>("--wire") { Description = "Wire format: fp32, bf16, fp16.", DefaultValueFactory = _ => "fp32" };
        var cmd = new Command("allreduce", "All-reduce bandwidth, ring vs coordinator, against raw TCP between the same processes.")
            { json, sizes, procs, modes, wire };
        cmd.SetAction(async (r, ct) =>
        {
            var options = new AllReduceBenchOptions
            {
                SizesMb = Ints(r.GetValue(sizes)!),
                Procs = Ints(r.GetValue(procs)!),
                Modes = r.GetValue(modes)!.Split(',').Select(m => Enum.Parse<AllReduceAlgorithm>(m.Trim(), ignoreCase: true)).ToArray(),
                Wire = r.GetValue(wire) switch { "bf16" => WireFormat.BFloat16, "fp16" => WireFormat.Float16, _ => WireFormat.Float32 },
            };
            bool asJson = r.GetValue(json);
            if (!asJson) Console.WriteLine(AllReduceBench.TableHeader());
            var rows = await AllReduceBench.RunAsync(options, AllReduceBench.Self("bench", ChildName), asJson ? TextWriter.Null : Console.Out, ct);
            if (asJson) Console.WriteLine(AllReduceBench.ToJson(rows));
            return 0;
        });
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
}
