// disttrain: the one executable of DistTrain. Every subcommand lives in Commands/, one file each.
//   dotnet run --project src/DistTrain.Cli -- demo         the main job on the bundled Brown Corpus
//   dotnet run --project src/DistTrain.Cli -- --help       everything else
using System.CommandLine;
using DistTrain.Cli.Commands;

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
