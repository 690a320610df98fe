using System.CommandLine;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain data ...`: corpus preparation and inspection.</summary>
public static class DataCommand
{
    public static Command Create() => new("data", "Prepare and inspect corpora.");
}
