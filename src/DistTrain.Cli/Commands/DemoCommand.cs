using System.CommandLine;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain demo`: the main job, on the bundled Brown Corpus.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the main job on the bundled Brown Corpus.");
        cmd.SetAction(_ => { Console.WriteLine("demo: not yet built"); return 1; });
        return cmd;
    }
}
