using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Coordination;

/// <summary>The distributed label run's state machine, driven by hand.</summary>
public sealed class InferenceRunTests
{
    private static WorkerSlot W(string id) => new(id, "node-" + id, "cpu", new DataPlaneEndpoint("127.0.0.1", 9000));

    private static List<(string Worker, RunShard Shard)> Shards(IEnumerable<RunCommand> cmds) =>
        cmds.OfType<SendTo>().Where(s => s.Message is RunShard).Select(s => (s.WorkerId, (RunShard)s.Message)).ToList();

    private static ShardDone Done(int shard) => new("job", "label", shard, 10, 1.0, false);

    [Fact]
    public void Shards_go_one_at_a_time_to_free_workers_until_all_are_done()
    {
        var run = new InferenceRun("job", "label", "spec", false, shardCount: 5, maxWorkers: 64);
        Assert.Equal(RunPhase.WaitingForWorkers, run.Phase);
        var first = Shards(run.OnWorkersAvailable([W("a"), W("b")]));
        Assert.Equal([("a", 0), ("b", 1)], first.Select(s => (s.Worker, s.Shard.Shard)));
        Assert.All(first, s => Assert.Equal(5, s.Shard.ShardCount));
        Assert.Equal(RunPhase.Running, run.Phase);
        Assert.Equal(2, run.Members.Count);

        Assert.Equal([("a", 2)], Shards(run.OnShardDone(Done(0), "a")).Select(s => (s.Worker, s.Shard.Shard)));
        Assert.Equal([("b", 3)], Shards(run.OnShardDone(Done(1), "b")).Select(s => (s.Worker, s.Shard.Shard)));
        Assert.Equal([("a", 4)], Shards(run.OnShardDone(Done(2), "a")).Select(s => (s.Worker, s.Shard.Shard)));
        Assert.Empty(run.OnShardDone(Done(3), "b"));
        Assert.Single(run.Members);                                    // b is released to the pool
        var end = run.OnShardDone(Done(4), "a");
        Assert.True(end.OfType<Finished>().Single().Succeeded);
        Assert.Equal(RunPhase.Completed, run.Phase);
    }

    [Fact]
    public void The_job_manager_hears_when_shards_first_go_out_and_again_after_every_holder_was_lost()
    {
        var run = new InferenceRun("job", "label", "spec", false, shardCount: 4, maxWorkers: 64);
        var first = run.OnWorkersAvailable([W("b"), W("a")]);
        var formed = Assert.IsType<GroupFormed>(first[0]);
        Assert.Equal(["a", "b"], formed.Workers);
        Assert.False(formed.Lockstep);   // no lockstep: no straggler metrics
        Assert.DoesNotContain(run.OnShardDone(Done(0), "a"), c => c is GroupFormed);            // still running
        run.OnWorkerLost("a", "killed");
        Assert.DoesNotContain(run.OnWorkerLost("b", "killed"), c => c is GroupFormed);           // nobody to hand shards to
        Assert.Equal(RunPhase.WaitingForWorkers, run.Phase);
        Assert.Equal(["c"], Assert.IsType<GroupFormed>(run.OnWorkersAvailable([W("c")])[0]).Workers);
    }

    [Fact]
    public void A_lost_worker_returns_its_shard_to_the_pool()
    {
        var run = new InferenceRun("job", "label", "spec", false, 2, 64);
        run.OnWorkersAvailable([W("a"), W("b")]);
        Assert.Empty(run.OnWorkerLost("a", "killed"));
        Assert.Equal([("b", 0)], Shards(run.OnShardDone(Done(1), "b")).Select(s => (s.Worker, s.Shard.Shard)));
        Assert.True(run.OnShardDone(Done(0), "b").OfType<Finished>().Single().Succeeded);
    }

    [Fact]
    public void A_shard_that_keeps_failing_fails_the_run_and_stale_reports_are_ignored()
    {
        var run = new InferenceRun("job", "label", "spec", false, 1, 64, maxShardFailures: 1);
        run.OnWorkersAvailable([W("a")]);
        Assert.Empty(run.OnShardDone(Done(0), "b"));                   // not b's shard
        var retry = Shards(run.OnShardFailed(new ShardFailed("job", "label", 0, "out of memory"), "a"));
        Assert.Equal([("a", 0)], retry.Select(s => (s.Worker, s.Shard.Shard)));
        var end = run.OnShardFailed(new ShardFailed("job", "label", 0, "out of memory"), "a").OfType<Finished>().Single();
        Assert.False(end.Succeeded);
        Assert.Contains("shard 0 failed 2 time(s)", end.Summary);
    }

    [Fact]
    public void At_most_max_workers_hold_shards_and_a_stop_keeps_what_is_done()
    {
        var run = new InferenceRun("job", "label", "spec", false, 4, maxWorkers: 1);
        Assert.Single(Shards(run.OnWorkersAvailable([W("a"), W("b")])));
        run.OnShardDone(Done(0), "a");
        var end = run.RequestStop("the job was cancelled").OfType<Finished>().Single();
        Assert.True(end.Stopped);
        Assert.Contains("1 of 4 shard(s) done", end.Summary);
        Assert.Empty(run.Members);
    }
}
