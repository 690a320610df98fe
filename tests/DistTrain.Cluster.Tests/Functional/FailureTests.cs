using DistTrain.Host;
using System.Diagnostics;
using Akka.Actor;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;
using DistTrain.Training.Engine;
using DistTrain.Training.Sampling;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>Membership changes on a real cluster: a killed worker, a joining worker, a diverged replica.</summary>
[Collection("cluster")]
public sealed class FailureTests(ITestOutputHelper output)
{
    /// <summary>The generation of a stage's first group: the first group of its first dispatch.</summary>
    private const int FirstGeneration = JobScheduler.GenerationsPerAttempt * 1 + 1;

    /// <summary>Forwards the coordinator's run events from its event stream to a test callback.</summary>
    private sealed class Listener : ReceiveActor
    {
        public Listener(Action<object> onEvent) => ReceiveAny(onEvent);

        protected override void PreStart()
        {
            Context.System.EventStream.Subscribe(Self, typeof(StepCompleted));
            Context.System.EventStream.Subscribe(Self, typeof(GenerationStarted));
        }
    }

    [Fact]
    public async Task A_killed_worker_is_replaced_by_a_rollback_and_every_example_is_trained_exactly_once()
    {
        // 240 examples / batch 12 = 20 steps per epoch; 40 steps = 2 epochs, checkpoints every 10 steps.
        string yaml = ClusterHarness.Spec(workers: 3, "ring", steps: 40, checkpointEvery: 10, checksumEvery: 0, minWorkers: 2);
        using var root = new TempDir();
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(3, root.Path, ClusterHarness.Disttrain()));

        var killedAt = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
        var recovered = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
        int generationAfterKill = 0;
        Action<object> onEvent = e =>
        {
            switch (e)
            {
                // The first dispatch of a stage numbers its groups from 1001 (see DataParallelRun's firstGeneration).
                case StepCompleted { Step: 14, Rank: 0, Generation: FirstGeneration }:
                    cluster.Workers.Kill(1);   // kill -9 of one worker process mid-epoch, past the step-10 checkpoint
                    killedAt.TrySetResult(DateTime.UtcNow);
                    break;
                case GenerationStarted g when killedAt.Task.IsCompleted && g.Generation > FirstGeneration:
                    generationAfterKill = g.Generation;
                    break;
                case StepCompleted s when generationAfterKill > 0 && s.Generation == generationAfterKill:
                    recovered.TrySetResult(DateTime.UtcNow);
                    break;
            }
        };
        cluster.System.ActorOf(Props.Create(() => new Listener(onEvent)));

        var job = await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: false);
        var result = job.Stages.Single();
        Assert.True(result.Succeeded, result.Summary);
        Assert.True(result.Metrics["restarts"] >= 1, "the kill should have cost a restart");
        double recovery = (await recovered.Task - await killedAt.Task).TotalSeconds;
        output.WriteLine($"killed worker 1 after step 14; first step of the re-formed group (generation {generationAfterKill}) {recovery:F1} s later; {result.Summary}");

        var records = ClusterHarness.AssertTrainedExactlyOnce(Path.Combine(root.Path, job.JobId, "lm"), steps: 40, examplesPerEpoch: 240);
        Assert.Contains(records, r => r.Step >= 10 && r.Step <= 14 && r.Generation == FirstGeneration);   // rolled-back work existed
    }

    [Fact]
    public async Task A_worker_that_joins_mid_job_raises_the_world_size_and_equivalence_holds()
    {
        string yaml = ClusterHarness.Spec(workers: 3, "ring", steps: 20, checkpointEvery: 0, checksumEvery: 5, minWorkers: 2);
        using var reference = new TempDir();
        using var root = new TempDir();
        ClusterHarness.RunInProcess(yaml, reference.Path);

        // Rank 0 straggles 20 s after step 5, so the job is still running when the new process (a few seconds to
        // start and register) arrives; it is admitted at the next window boundary, step 10.
        Environment.SetEnvironmentVariable(FaultInjection.Variable, "straggle:rank=0:step=5:seconds=20");
        string jobId;
        try
        {
        await using (var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(2, root.Path, ClusterHarness.Disttrain())))
        {
            var worldSizes = new List<int>();
            Action<object> onEvent = e =>
            {
                if (e is GenerationStarted g) lock (worldSizes) worldSizes.Add(g.Workers.Count);
                if (e is StepCompleted { Step: 3, Rank: 0, Generation: FirstGeneration }) cluster.AddWorker();
            };
            cluster.System.ActorOf(Props.Create(() => new Listener(onEvent)));
            var job = await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: false);
            var result = job.Stages.Single();
            jobId = job.JobId;
            Assert.True(result.Succeeded, result.Summary);
            output.WriteLine(result.Summary);
            lock (worldSizes) Assert.Equal([2, 3], worldSizes);
        }
        }
        finally
        {
            Environment.SetEnvironmentVariable(FaultInjection.Variable, null);
        }
        double diff = ClusterHarness.MaxAbsDiff(ClusterHarness.FinalParameters(yaml, reference.Path, "ref"), ClusterHarness.FinalParameters(yaml, root.Path, jobId));
        output.WriteLine($"2 → 3 workers mid-job: max |Δparam| vs one process after 20 steps = {diff:E2}");
        Assert.True(diff <= 1e-5, $"max |Δ| = {diff}");
    }

    [Fact]
    public async Task A_corrupted_replica_is_caught_by_the_checksum_and_named()
    {
        string yaml = ClusterHarness.Spec(workers: 3, "coordinator", steps: 20, checksumEvery: 5, maxRestarts: 0);
        using var root = new TempDir();
        Environment.SetEnvironmentVariable(FaultInjection.Variable, "corrupt-parameter:rank=1:step=6");
        try
        {
            await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(3, root.Path, ClusterHarness.Disttrain()));
            var result = (await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: false)).Stages.Single();
            output.WriteLine(result.Summary);
            Assert.False(result.Succeeded);
            Assert.Contains("checksum mismatch after step 9", result.Summary);
            Assert.Contains("rank(s) 1 diverged", result.Summary);
        }
        finally
        {
            Environment.SetEnvironmentVariable(FaultInjection.Variable, null);
        }
    }
}
