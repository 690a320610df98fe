using DistTrain.Execution;
using DistTrain.Cluster.Hosting;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>Specs, runs and comparisons shared by the multi-process cluster tests.</summary>
public static class ClusterHarness
{
    /// <summary>A tiny GPT on real Brown text; no dropout, so data parallelism must reproduce one process exactly.</summary>
    public static string Spec(int workers, string aggregation, int steps = 20, int checkpointEvery = 0, int checksumEvery = 5,
        int maxExamples = 240, int minWorkers = 0, int maxRestarts = 3, int layers = 1, double bucketMb = 25) => $$"""
        name: tiny-dp
        seed: 11
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: {{layers}}, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512, dropout: 0.0}
            data: {corpus: brown, seq_len: 32, max_examples: {{maxExamples}}}
            train: {steps: {{steps}}, batch_size: 12, lr: 3.0e-3, warmup: 2, checkpoint_every: {{checkpointEvery}}}
            distributed: {workers: {min: {{(minWorkers == 0 ? workers : minWorkers)}}, max: {{workers}}}, aggregation: {{aggregation}}, checksum_every: {{checksumEvery}}, max_restarts: {{maxRestarts}}{{(bucketMb == DistributedSpec.DefaultGradientBucketMb ? "" : $", gradient_bucket_mb: {bucketMb.ToString(System.Globalization.CultureInfo.InvariantCulture)}")}}}
        """;

    public static ExecutableCommand Disttrain() => ExecutableCommand.Dll(Path.Combine(AppContext.BaseDirectory, "disttrain.dll"));

    public static JobSpec Load(string yaml)
    {
        var r = JobSpecs.Load(yaml);
        Assert.True(r.Ok, string.Join("\n", r.Errors));
        return r.Spec!;
    }

    /// <summary>The single-process reference: the same spec through the in-process runner.</summary>
    public static string RunInProcess(string yaml, string root)
    {
        // One thread, as each worker uses: OpenMP threads spinning for a contended core can slow a step 50×.
        TorchSharp.torch.set_num_threads(1);
        new PipelineRunner(root, "ref", CPU).Run(Load(yaml));
        return root;
    }

    /// <summary>Every trainable parameter of a stage's final checkpoint, flattened.</summary>
    /// <summary>
    /// The single-process reference of the stages after <paramref name="finishedStage"/>, started from a cluster run's
    /// output of that stage (copied from <paramref name="clusterStageDirectory"/>; the runner's resume skips it as
    /// finished): each later stage then measures its own data-parallel error, not the one it inherits.
    /// </summary>
    public static string RunInProcessAfter(string yaml, string root, string finishedStage, string clusterStageDirectory)
    {
        TestFiles.CopyDirectory(clusterStageDirectory, Path.Combine(root, "ref", finishedStage));
        TorchSharp.torch.set_num_threads(1);
        new PipelineRunner(root, "ref", CPU).Run(Load(yaml), resume: true);
        return Path.Combine(root, "ref");
    }

    public static float[] FinalParameters(string yaml, string root, string jobId, string stage = "lm")
    {
        var job = Load(yaml);
        using var module = ObjectiveFactory.LoadTrained(job, job.Stage(stage)!, new StageArtifacts(root, jobId, stage), CPU);
        return Trainer.TrainableParameters(module).SelectMany(p => p.detach().data<float>().ToArray()).ToArray();
    }

    /// <summary>One rank's record of the examples it trained in one step of one group generation (<c>samples-rank*.jsonl</c>).</summary>
    public sealed record SampleRecord(int Generation, int Step, int Epoch, int[] Examples);

    /// <summary>
    /// Exactly-once from the per-rank sampler records of a stage: for each step, the records of the last generation that
    /// ran it count (earlier ones were rolled back); every step ran, and every epoch trained each example exactly once.
    /// Returns every record, rolled back ones included.
    /// </summary>
    public static List<SampleRecord> AssertTrainedExactlyOnce(string stageDirectory, int steps, int examplesPerEpoch)
    {
        var records = Directory.GetFiles(stageDirectory, "samples-rank*.jsonl")
            .SelectMany(File.ReadLines)
            .Select(l => System.Text.Json.JsonSerializer.Deserialize<SampleRecord>(l, new System.Text.Json.JsonSerializerOptions { PropertyNameCaseInsensitive = true })!)
            .ToList();
        var committed = records.GroupBy(r => r.Step).SelectMany(g => g.Where(r => r.Generation == g.Max(x => x.Generation))).ToList();
        Assert.Equal(Enumerable.Range(0, steps), committed.Select(r => r.Step).Distinct().Order());
        foreach (var epoch in committed.GroupBy(r => r.Epoch))
        {
            var trained = epoch.SelectMany(r => r.Examples).ToList();
            Assert.Equal(examplesPerEpoch, trained.Count);                           // no example twice…
            Assert.Equal(Enumerable.Range(0, examplesPerEpoch), trained.Order());    // …and none missing
        }
        return records;
    }

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
