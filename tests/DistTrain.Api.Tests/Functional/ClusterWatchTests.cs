using DistTrain.Host;
using System.Text.RegularExpressions;
using DistTrain.Api.Hosting;
using DistTrain.Api.Tests.Support;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Api.Tests.Functional;

/// <summary>
/// The whole path a user takes: `disttrain submit --watch` against a real local cluster (the coordinator node serving
/// the API, a worker process training), following the job's progress to its successful end.
/// </summary>
public sealed partial class ClusterWatchTests
{
    [Fact]
    public async Task Submit_and_watch_a_job_that_trains_on_a_worker_to_success()
    {
        using var dir = new TempDir();
        var executable = ExecutableCommand.Dll(Path.Combine(AppContext.BaseDirectory, "disttrain.dll"));
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(1, Path.Combine(dir.Path, "run"), executable, TorchThreads: 1));
        string spec = Path.Combine(dir.Path, "tiny.yaml");
        File.WriteAllText(spec, TestSpecs.TinyGpt("watched", steps: 6));

        var run = await Disttrain.RunAsync(TimeSpan.FromMinutes(5), null, "submit", spec, "--watch", "--server", cluster.GrpcAddress);
        Assert.True(run.ExitCode == 0, run.ToString());
        string id = SubmittedId().Match(run.Output).Groups[1].Value;
        Assert.Contains("stage lm (pretrain): running", run.Output);
        Assert.True(Regex.IsMatch(run.Output, @"lm rank 0 .*step 6/6 loss \d"), run.ToString());   // the last step's progress, from the worker
        Assert.Contains("stage lm (pretrain): succeeded", run.Output);
        Assert.Contains($"job {id} succeeded", run.Output);
        Assert.Contains("perplexity", run.Output);                   // the final stage table carries the metrics

        // After the end, the same job through the other commands.
        var status = await Disttrain.RunAsync("status", id, "--server", cluster.GrpcAddress);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("succeeded", status.Output);
        var workers = await Disttrain.RunAsync("workers", "--server", cluster.GrpcAddress);
        Assert.True(workers.ExitCode == 0, workers.ToString());
        Assert.Contains("cpu", workers.Output);
        Assert.Contains("up", workers.Output);
    }

    [GeneratedRegex(@"submitted job (\S+)")]
    private static partial Regex SubmittedId();
}
