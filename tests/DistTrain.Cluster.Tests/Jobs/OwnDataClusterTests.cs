using DistTrain.Host;
using DistTrain.Execution;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Tests.Functional;
using DistTrain.Contracts.Specs;
using DistTrain.Data;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// The specs of examples/own-data, unchanged, through the job service of a real two-worker cluster whose nodes share
/// a data root: every stage kind on the user's files, data-parallel where it trains; the result of a data-parallel
/// stage equals one process; a spec naming a missing file is refused at submit.
/// </summary>
[Collection("cluster")]
public sealed class OwnDataClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_own_data_spec_runs_through_submit_on_two_workers_and_matches_one_process()
    {
        using var dir = new TempDir();
        var data = OwnData.CopyTo(dir.Path);
        var runs = Path.Combine(dir.Path, "runs");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(12));
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(2, runs, ClusterHarness.Disttrain()) { DataRoot = data }, timeout.Token);

        // The coordinator knows the data root: a missing file is refused at submit, naming the path.
        var missing = await cluster.Jobs.SubmitAsync(File.ReadAllText(Path.Combine(data, "pretrain-gpt.yaml")).Replace("data/books", "data/no-such-folder"), quick: true, timeout.Token);
        Assert.False(missing.Accepted);
        Assert.Contains(missing.Errors, e => e.Message.Contains("'data/no-such-folder' does not exist under the data root"));

        foreach (var file in Directory.GetFiles(data, "*.yaml").Order())
        {
            var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(File.ReadAllText(file), quick: true, null, timeout.Token);
            output.WriteLine($"{Path.GetFileName(file)}: {result.State}; {string.Join("; ", result.Stages.Select(s => $"{s.Stage} {s.Summary}"))}");
            Assert.True(result.State == JobState.Succeeded, $"{Path.GetFileName(file)}: {string.Join("; ", result.Stages.Select(s => $"{s.Stage}: {s.Summary}"))}");
            foreach (var stage in result.Stages)
                Assert.True(File.Exists(new StageArtifacts(runs, result.JobId, stage.Stage).Metrics), $"{Path.GetFileName(file)}: {stage.Stage} wrote no metrics");
        }

        // Data parallelism over prepared shards reproduces one process: the same spec without dropout (whose masks are
        // drawn per rank), in process and on two workers, ends with the same weights.
        var yaml = File.ReadAllText(Path.Combine(data, "pretrain-gpt.yaml")).Replace("max_len: 64}", "max_len: 64, dropout: 0.0}");
        var job = JobSpecs.Load(yaml, data, quick: true).Spec!;
        Assert.Equal(0.0, job.Stages[0].Model.Dropout);
        var parallel = await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: true, null, timeout.Token);
        Assert.Equal(JobState.Succeeded, parallel.State);
        var gptJob = parallel.JobId;
        Assert.True(File.Exists(Path.Combine(new StageArtifacts(runs, gptJob, "clm").Directory, "samples-rank1.jsonl")), "the stage did not run on two workers");
        Assert.Equal(2, job.Stages[0].Distributed.MaxWorkers);
        set_num_threads(1);
        var reference = Path.Combine(dir.Path, "reference");
        new PipelineRunner(reference, "ref", CPU, null, data).Run(job);
        var cluster2 = Parameters(job, runs, gptJob!, data);
        var single = Parameters(job, reference, "ref", data);
        double diff = ClusterHarness.MaxAbsDiff(single, cluster2);
        output.WriteLine($"pretrain-gpt: max |cluster − one process| = {diff:G3} over {single.Length} parameters");
        Assert.True(diff < 1e-5, $"2 workers differ from one process by {diff}");
    }

    private static float[] Parameters(JobSpec job, string root, string jobId, string dataRoot)
    {
        using var module = ObjectiveFactory.LoadTrained(job, job.Stages[0], new StageArtifacts(root, jobId, job.Stages[0].Name, dataRoot), CPU);
        return Trainer.TrainableParameters(module).SelectMany(p => p.detach().data<float>().ToArray()).ToArray();
    }

}
