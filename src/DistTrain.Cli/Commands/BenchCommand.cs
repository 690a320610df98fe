using System.CommandLine;
using DistTrain.Bench;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain bench ...`: benchmarks whose results go to docs/benchmarks.md. The work is done in DistTrain.Bench.</summary>
/// <remarks>
///   disttrain bench allreduce [--json] [--sizes 1,4,16,64,256] [--procs 2,3,4] [--modes ring,coordinator] [--wire fp32|bf16|fp16]
///                                   spawns one child per rank on loopback; ours vs raw TCP in the same run
/// </remarks>
public static class BenchCommand
{
    public static Command Create() => new("bench", "Run benchmarks (results: docs/benchmarks.md).") { AllReduce(), AllReduceChild() };

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
