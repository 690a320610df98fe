using System.Text.Json;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>`disttrain run` end to end, as a user runs it: a real process, a real spec, the files it writes.</summary>
public sealed class RunCommandTests
{
    private static readonly string Spec = TestSpecs.TinyGpt("cli-smoke");

    [Fact]
    public void A_spec_runs_and_writes_metrics_and_the_report()
    {
        using var dir = new TempDir();
        string spec = Path.Combine(dir.Path, "spec.yaml");
        File.WriteAllText(spec, Spec);
        string output = Path.Combine(dir.Path, "run");
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(5), "run", spec, "--out", output, "--threads", "1");
        Assert.True(code == 0, stdout + stderr);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
        var metrics = report.RootElement.GetProperty("stages").GetProperty("lm").GetProperty("metrics");
        double ppl = metrics.GetProperty("perplexity").GetDouble();
        Assert.True(double.IsFinite(ppl) && ppl > 1, $"perplexity {ppl}");
        Assert.True(metrics.GetProperty("unigram_perplexity").GetDouble() > 1);
        Assert.True(File.Exists(Path.Combine(output, "lm", "metrics.json")));
        Assert.Contains("step", stdout);
    }

    [Fact]
    public void A_malformed_spec_is_refused_with_the_path_of_the_bad_field()
    {
        using var dir = new TempDir();
        string spec = Path.Combine(dir.Path, "bad.yaml");
        File.WriteAllText(spec, Spec.Replace("layers: 1", "layers: 0"));
        var (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "run", spec);
        Assert.Equal(2, code);
        Assert.Contains("stages[0].model.layers", stderr);
    }

    [Fact]
    public void A_node_with_an_unknown_role_says_so()
    {
        var (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "node", "--roles", "janitor");
        Assert.Equal(2, code);
        Assert.Contains("unknown role 'janitor'", stderr);
    }
}
