using System.CommandLine;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain bench ...`: benchmarks whose results go to docs/benchmarks.md.</summary>
public static class BenchCommand
{
    public static Command Create() => new("bench", "Run benchmarks (results: docs/benchmarks.md).");
}
