// disttrain: the one executable of DistTrain. Every subcommand lives in Commands/, one file each.
//   dotnet run --project src/DistTrain.Cli -- demo         the main job on the bundled Brown Corpus
//   dotnet run --project src/DistTrain.Cli -- --help       everything else
using System.CommandLine;
using DistTrain.Cli.Commands;

// The benchmarks are an executable of their own: everything after `bench` is theirs, --help included.
if (args is ["bench", .. var benchArgs])
{
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    return await BenchCommand.RunAsync(benchArgs, cancel.Token);
}

var root = new RootCommand("DistTrain: distributed training of language models on an Akka.NET cluster.")
{
    DemoCommand.Create(),
    RunCommand.Create(),
    ExportCommand.Create(),
    NodeCommand.Create(),
    LocalCommand.Create(),
    DataCommand.Create(),
    BenchCommand.Create(),
    SubmitCommand.Create(),
    JobsCommand.Create(),
    StatusCommand.Create(),
    WatchCommand.Create(),
    CancelCommand.Create(),
    WorkersCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
