using DistTrain.Host;
using DistTrain.Cluster.Jobs;
using DistTrain.Cli.Tests.Commands;
using DistTrain.Cluster.Tests.Functional;
using DistTrain.Contracts.Specs;
using DistTrain.Execution;
using DistTrain.Training.Pipeline;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// examples/hf-teacher.yaml, unchanged, through the job service of a real two-worker cluster (--quick): the teacher
/// checkpoint is made first from examples/hf-teacher-pretrain.yaml (in process, as make-hf-teacher.sh does with the CLI),
/// then every stage runs on the cluster, and the exported student imports back to the trained stage's logits.
/// </summary>
[Collection("cluster")]
public sealed class HfTeacherClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_hf_teacher_example_runs_on_two_workers_and_its_exported_student_imports_back()
    {
        using var dir = new TempDir();
        var root = HfTeacherExample.CopyTo(dir.Path);
        var pretrain = JobSpecs.LoadFile(Path.Combine(root, "hf-teacher-pretrain.yaml"), root, quick: true).Spec!;
        new PipelineRunner(Path.Combine(dir.Path, "pretrain"), "pretrain", CPU, null, root).Run(pretrain);
        TestFiles.CopyDirectory(Path.Combine(dir.Path, "pretrain", "pretrain", "lm", HfExport.Folder), Path.Combine(root, "models", "gpt-teacher"));

        var runs = Path.Combine(dir.Path, "runs");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(2, runs, ClusterHarness.Disttrain()) { DataRoot = root }, timeout.Token);
        var spec = Path.Combine(root, "hf-teacher.yaml");
        // The teacher writes no model section: the job manager fills it from config.json at submission, and refuses a
        // written field that contradicts it, naming the field, before any stage starts.
        var contradicting = File.ReadAllText(spec).Replace("    inputs: {init: \"hf:models/gpt-teacher\"}\n", "    inputs: {init: \"hf:models/gpt-teacher\"}\n    model: {layers: 3}\n");
        Assert.NotEqual(File.ReadAllText(spec), contradicting);
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => new ClusterJobRunner(cluster.Jobs).RunAsync(contradicting, quick: true, null, timeout.Token));
        Assert.Contains("stages[0].model.layers: is 3, but config.json's n_layer is 2", refused.Message);
        var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(File.ReadAllText(spec), quick: true, null, timeout.Token);
        output.WriteLine($"{result.State}; {string.Join("; ", result.Stages.Select(s => $"{s.Stage} {s.Summary}"))}");
        Assert.True(result.State == JobState.Succeeded, string.Join("; ", result.Stages.Select(s => $"{s.Stage}: {s.Summary}")));
        Assert.True(File.Exists(Path.Combine(new StageArtifacts(runs, result.JobId!, "student").Directory, "samples-rank1.jsonl")), "the student did not train on two workers");

        HfTeacherExampleCheck.StudentExportMatchesTheTrainedStage(spec, root, runs, result.JobId!);
    }
}
