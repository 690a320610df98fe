using System.Text.RegularExpressions;
using DistTrain.Api.Tests.Support;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Api.Tests.Functional;

/// <summary>The `disttrain` client commands as a user runs them: a real process against a real node's job API.</summary>
[Collection(SharedNodeCollection.Name)]
public sealed partial class CliTests(SharedNode shared)
{
    private string Server => shared.Node.Address;

    [Fact]
    public async Task Submit_list_status_workers_cancel_and_watch_a_job()
    {
        using var dir = new TempDir();
        string spec = Path.Combine(dir.Path, "spec.yaml");
        File.WriteAllText(spec, TestSpecs.TinyGpt("cli-job"));

        var submit = await Disttrain.RunAsync("submit", spec, "--quick", "--server", Server);
        Assert.True(submit.ExitCode == 0, submit.ToString());
        string id = SubmittedId().Match(submit.Output).Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(id), submit.ToString());

        // The environment variable stands in for --server.
        var jobs = await Disttrain.RunAsync(TimeSpan.FromMinutes(2), new Dictionary<string, string> { ["DISTTRAIN_SERVER"] = Server }, "jobs", "--name", "cli-job-quick");
        Assert.True(jobs.ExitCode == 0, jobs.ToString());
        Assert.Contains(id, jobs.Output);
        Assert.Contains("queued", jobs.Output);

        var status = await Disttrain.RunAsync("status", id, "--server", Server);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("cli-job", status.Output);
        Assert.Contains("lm", status.Output);
        Assert.Contains("pretrain", status.Output);

        var workers = await Disttrain.RunAsync("workers", "--server", Server);
        Assert.True(workers.ExitCode == 0, workers.ToString());
        Assert.Contains("no workers", workers.Output);   // this node has none

        var cancel = await Disttrain.RunAsync("cancel", id, "--server", Server);
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.Contains("cancelling job", cancel.Output);

        // Watch follows the job to its end and reports how it ended; not succeeded is exit 1.
        var watch = await Disttrain.RunAsync("watch", id, "--server", Server);
        Assert.True(watch.ExitCode == 1, watch.ToString());
        Assert.Contains($"job {id} cancelled", watch.Output);

        var again = await Disttrain.RunAsync("cancel", id, "--server", Server);
        Assert.True(again.ExitCode == 6, again.ToString());
        Assert.Contains("already ended", again.Error);
    }

    [Fact]
    public async Task Errors_are_readable_and_have_distinct_exit_codes()
    {
        using var dir = new TempDir();
        string bad = Path.Combine(dir.Path, "bad.yaml");
        File.WriteAllText(bad, TestSpecs.TinyGpt("cli-bad").Replace("layers: 1", "layers: 0").Replace("kind: pretrain", "kind: sorcery"));
        var invalid = await Disttrain.RunAsync("submit", bad, "--server", Server);
        Assert.True(invalid.ExitCode == 2, invalid.ToString());
        Assert.Contains("invalid job spec", invalid.Error);
        Assert.Contains("stages[0].kind", invalid.Error);

        var missingFile = await Disttrain.RunAsync("submit", Path.Combine(dir.Path, "nope.yaml"), "--server", Server);
        Assert.True(missingFile.ExitCode == 2, missingFile.ToString());
        Assert.Contains("no such file", missingFile.Error);

        var unknown = await Disttrain.RunAsync("status", "no-such-job", "--server", Server);
        Assert.True(unknown.ExitCode == 3, unknown.ToString());
        Assert.Contains("no job with id 'no-such-job'", unknown.Error);

        var unreachable = await Disttrain.RunAsync("jobs", "--server", $"http://127.0.0.1:{LoopbackPorts.Free()}");
        Assert.True(unreachable.ExitCode == 5, unreachable.ToString());
        Assert.Contains("cannot reach the job API", unreachable.Error);

        var badAddress = await Disttrain.RunAsync("jobs", "--server", "not a url");
        Assert.True(badAddress.ExitCode == 2, badAddress.ToString());
        Assert.Contains("is not a server address", badAddress.Error);
    }

    [Fact]
    public async Task The_token_comes_from_the_flag_or_the_environment()
    {
        await using var node = await ApiNode.StartAsync(token: "cli-token");
        await node.WaitUntilServingAsync();
        var none = await Disttrain.RunAsync("jobs", "--server", node.Address);
        Assert.True(none.ExitCode == 4, none.ToString());
        Assert.Contains("not authenticated", none.Error);

        var wrong = await Disttrain.RunAsync("jobs", "--server", node.Address, "--token", "guess");
        Assert.True(wrong.ExitCode == 4, wrong.ToString());
        Assert.Contains("invalid bearer token", wrong.Error);

        var fromFlag = await Disttrain.RunAsync("workers", "--server", node.Address, "--token", "cli-token");
        Assert.True(fromFlag.ExitCode == 0, fromFlag.ToString());

        var fromEnv = await Disttrain.RunAsync(TimeSpan.FromMinutes(2),
            new Dictionary<string, string> { ["DISTTRAIN_SERVER"] = node.Address, ["DISTTRAIN_TOKEN"] = "cli-token" }, "jobs");
        Assert.True(fromEnv.ExitCode == 0, fromEnv.ToString());
    }

    [Fact]
    public async Task A_node_will_not_serve_the_api_without_a_token()
    {
        var r = await Disttrain.RunAsync("node", "--roles", "coordinator", "--port", LoopbackPorts.Free().ToString(), "--grpc-port", LoopbackPorts.Free().ToString());
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("DISTTRAIN_API_TOKEN", r.Error);
    }

    [GeneratedRegex(@"submitted job (\S+)")]
    private static partial Regex SubmittedId();
}
