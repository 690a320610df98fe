// disttrain-bench: the benchmarks of docs/benchmarks.md. Run them through the CLI, which starts this executable:
//   src/DistTrain.Cli/bin/Release/net10.0/disttrain bench allreduce --sizes 16,64 --procs 2,3
// The CLI hands itself over in front of the user's arguments (ExecutableCommand.HandOver): cluster benchmarks start
// their nodes with that same `disttrain`.
using DistTrain.Bench;
using DistTrain.Cluster.Hosting;

var (disttrain, rest) = ExecutableCommand.TakeHandedOver(args);
var root = BenchCommand.Create(() => disttrain ?? throw new InvalidOperationException(
    "this benchmark starts `disttrain` nodes: run it as `disttrain bench …`, which tells disttrain-bench where the CLI is"));
return await root.Parse(rest).InvokeAsync();
