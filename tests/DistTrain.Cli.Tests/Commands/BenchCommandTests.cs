using System.Text.Json;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>
/// `disttrain bench …` starts the benchmarks' own executable (disttrain-bench, which the CLI does not reference) with the
/// arguments after `bench`: its output and exit code are the command's. The bench is found in its own build output,
/// which `dotnet build DistTrain.sln` (test.sh) makes.
/// </summary>
public sealed class BenchCommandTests
{
    [Fact]
    public void Bench_arguments_reach_the_bench_executable_and_its_rows_come_back()
    {
        // The smallest real run: two rank processes on loopback, one 1 MB size, ring only.
        var (code, output, error) = CliProcess.Run(TimeSpan.FromSeconds(120), "bench", "allreduce", "--sizes", "1", "--procs", "2", "--modes", "ring", "--json");
        Assert.True(code == 0, $"exit {code}: {error}");
        using var rows = JsonDocument.Parse(output);
        var row = Assert.Single(rows.RootElement.EnumerateArray());
        Assert.Equal("ring", row.GetProperty("mode").GetString());
        Assert.Equal(2, row.GetProperty("procs").GetInt32());
        Assert.True(row.GetProperty("alg_bw_gbps").GetDouble() > 0);
    }

    [Fact]
    public void Bench_help_is_the_bench_executables_and_a_wrong_benchmark_fails()
    {
        var help = CliProcess.Run(TimeSpan.FromSeconds(60), "bench", "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var benchmark in new[] { "allreduce", "overhead", "scaling", "startup", "data" }) Assert.Contains(benchmark, help.Output);

        var wrong = CliProcess.Run(TimeSpan.FromSeconds(60), "bench", "no-such-benchmark");
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains("no-such-benchmark", wrong.Error);
    }
}
