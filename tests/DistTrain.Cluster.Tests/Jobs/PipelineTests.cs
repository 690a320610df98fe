using DistTrain.Host;
using DistTrain.Execution;
using System.Text.Json;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Tests.Functional;
using DistTrain.Training.Pipeline;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>A whole pipeline on a real two-worker cluster through the job manager: pretrain → finetune → label → distil → evaluate.</summary>
[Collection("cluster")]
public sealed class PipelineTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_pipeline_runs_every_stage_labels_in_shards_on_the_workers_and_reports_every_stage()
    {
        using var root = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(2, root.Path, ClusterHarness.Disttrain()), timeout.Token);
        var shardsBy = new HashSet<string>();
        var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(JobBookTests.Pipeline("pipeline"), quick: false, e =>
        {
            if (e.Body is StageChanged { Stage: var s }) output.WriteLine($"{e.Sequence}: {s.Name} {s.State} {s.Error}");
        }, timeout.Token);
        Assert.True(result.State == JobState.Succeeded, string.Join("; ", result.Stages.Select(s => $"{s.Stage}: {s.Summary}")));

        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(root.Path, result.JobId, "report.json")));
        var stages = report.RootElement.GetProperty("stages");
        foreach (var name in new[] { "pretrain", "teacher", "label", "student", "evaluate" })
        {
            var metrics = stages.GetProperty(name).GetProperty("metrics");
            Assert.True(metrics.EnumerateObject().Any(), $"{name} has no metrics");
            output.WriteLine($"{name}: {string.Join(", ", metrics.EnumerateObject().Take(6).Select(p => $"{p.Name}={p.Value.GetDouble():G4}"))}");
        }
        var label = stages.GetProperty("label").GetProperty("metrics");
        int shards = (int)label.GetProperty("shards").GetDouble();
        Assert.Equal(LabelShards.Count(ClusterHarness.Load(JobBookTests.Pipeline("pipeline")).Stage("label")!), shards);
        // Every shard has its own checksummed file, and the merged file verifies too.
        var artifacts = new StageArtifacts(root.Path, result.JobId, "label");
        for (int i = 0; i < shards; i++) LabelFile.Read(InferenceStages.ShardDirectory(artifacts, i, shards));
        var (header, labels) = LabelFile.Read(artifacts.Labels);
        Assert.Equal(header.Examples, (int)label.GetProperty("examples").GetDouble());
        Assert.Equal(Enumerable.Range(0, labels.Count), labels.Select(l => l.Index));
        Assert.InRange(stages.GetProperty("evaluate").GetProperty("metrics").GetProperty("accuracy").GetDouble(), 0, 1);
    }
}
