using System.Text.Json;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>
/// The main job end to end, as a new user runs it: `disttrain demo --quick` starts a real cluster on loopback (the
/// coordinator serving the gRPC job API, two worker processes), submits the Brown pipeline over gRPC, watches it to the
/// end and writes the report. Every stage's metrics must be in report.json.
/// </summary>
public sealed class DemoCommandTests
{
    [Fact]
    public void The_quick_demo_runs_the_whole_pipeline_over_grpc_and_writes_the_report()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(6), "demo", "--quick", "--out", dir.Path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("submitted job", stdout);
        Assert.Contains("over gRPC", stdout);

        var runDir = Directory.GetDirectories(dir.Path, "brown-pipeline-quick-*").Single();
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "report.json")));
        var stages = report.RootElement.GetProperty("stages");
        Assert.Equal(new[] { "pretrain", "teacher", "label", "student", "evaluate" }.Order(), stages.EnumerateObject().Select(s => s.Name).Order());
        foreach (var stage in stages.EnumerateObject())
        {
            var metrics = stage.Value.GetProperty("metrics");
            Assert.True(metrics.EnumerateObject().Any(), $"{stage.Name} has no metrics");
            Assert.All(metrics.EnumerateObject(), m => Assert.True(double.IsFinite(m.Value.GetDouble()), $"{stage.Name}.{m.Name} = {m.Value}"));
        }
        Assert.True(stages.GetProperty("pretrain").GetProperty("metrics").GetProperty("perplexity").GetDouble() > 1);
        Assert.Equal(4, stages.GetProperty("label").GetProperty("metrics").GetProperty("shards").GetDouble());
        var evaluate = stages.GetProperty("evaluate").GetProperty("metrics");
        Assert.InRange(evaluate.GetProperty("parameter_ratio").GetDouble(), 0.01, 0.4);   // the spec's max_param_ratio
        Assert.True(evaluate.GetProperty("teacher_parameters").GetDouble() > evaluate.GetProperty("parameters").GetDouble());

        string md = File.ReadAllText(Path.Combine(runDir, "report.md"));
        Assert.Contains("Teacher against student", md);
        foreach (var png in new[] { "loss.png", "throughput.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(runDir, png));
            Assert.True(bytes.Length > 1000 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G', $"{png} is not a PNG");
        }
    }
}
