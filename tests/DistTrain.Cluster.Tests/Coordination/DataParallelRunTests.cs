using DistTrain.Cluster.Coordination;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Coordination;

/// <summary>The coordinator's run state machine, driven by hand: no ActorSystem, no clock.</summary>
public sealed class DataParallelRunTests
{
    private static WorkerSlot W(string id) => new(id, "node-" + id, "cpu", new DataPlaneEndpoint("127.0.0.1", 9000 + id.GetHashCode() % 100));

    private static DataParallelRun NewRun(int steps = 20, int min = 2, int max = 3, int restarts = 1, int ckpt = 10, int checksum = 0, int window = 5)
        => new("job", "pretrain", "spec", new RunLimits(steps, min, max, restarts, ckpt, checksum, window));

    private static List<T> Sent<T>(IEnumerable<RunCommand> cmds) => cmds.OfType<SendTo>().Select(s => s.Message).OfType<T>().ToList();

    /// <summary>Every member reports the steps of the current window; returns the commands of the last report.</summary>
    private static IReadOnlyList<RunCommand> CompleteWindow(DataParallelRun run, RunSteps window, Func<int, int, string?>? checksum = null)
    {
        IReadOnlyList<RunCommand> last = [];
        for (int step = window.FromStep; step < window.ToStep; step++)
            for (int rank = 0; rank < run.Members.Count; rank++)
            {
                string? sum = step == window.ToStep - 1 && window.ChecksumAtEnd ? (checksum?.Invoke(step, rank) ?? "same") : null;
                last = run.OnStepCompleted(new StepCompleted("job", "pretrain", run.Generation, rank, step, 1, 1, 1e-3, 100, 0.1, 0.01, 0, sum));
            }
        return last;
    }

    private static IReadOnlyList<RunCommand> PrepareAll(DataParallelRun run, int nextStep)
    {
        IReadOnlyList<RunCommand> last = [];
        for (int rank = 0; rank < run.Members.Count; rank++)
            last = run.OnPrepared(new GroupPrepared("job", "pretrain", run.Generation, rank, nextStep));
        return last;
    }

    [Fact]
    public void Forms_a_group_once_min_workers_are_free_with_ranks_in_worker_id_order()
    {
        var run = NewRun();
        Assert.Empty(run.OnWorkerAvailable(W("b")));
        var cmds = run.OnWorkerAvailable(W("a"));
        var prep = Sent<PrepareGroup>(cmds);
        Assert.Equal(RunPhase.Preparing, run.Phase);
        Assert.Equal(2, prep.Count);
        Assert.Equal(new[] { 0, 1 }, prep.Select(p => p.Rank));
        Assert.Equal("a", cmds.OfType<SendTo>().First().WorkerId);
        var formed = Assert.IsType<GroupFormed>(cmds[0]);   // told first, so the job manager hears of the group before its steps
        Assert.Equal((1, 0, true), (formed.Generation, formed.RestartsUsed, formed.Lockstep));
        Assert.Equal(["a", "b"], formed.Workers);
        Assert.DoesNotContain(cmds, c => c is StartReducer or EndReducer);   // ring: no reducer
        Assert.All(prep, p => Assert.Equal(2, p.WorldSize));
        Assert.All(prep, p => Assert.Null(p.ResumeFrom));
    }

    [Fact]
    public void Coordinator_aggregation_opens_a_reducer_slot_per_generation_and_closes_each_when_its_group_ends()
    {
        var transport = new RunTransport(GradientAggregation.Coordinator, GradientWire.Bf16, new DataPlaneEndpoint("127.0.0.1", 7000));
        var run = new DataParallelRun("job", "pretrain", "spec", new RunLimits(20, 2, 3, 1, 10, 0, 5), transport, firstGeneration: 1000);
        Assert.Empty(run.OnWorkerAvailable(W("a")));
        var first = run.OnWorkerAvailable(W("b"));
        Assert.Equal(1001, Assert.IsType<GroupFormed>(first[0]).Generation);
        var open1 = Assert.IsType<StartReducer>(first[1]);
        Assert.Equal((1001, 2, GradientWire.Bf16), (open1.Generation, open1.WorldSize, open1.Wire));
        // The reducer proves the same secret as the members, and the secret never prints.
        Assert.Equal(Sent<PrepareGroup>(first)[0].GroupSecret, open1.Secret);
        Assert.DoesNotContain(Convert.ToHexString(open1.Secret), open1.ToString());
        Assert.DoesNotContain(first, c => c is EndReducer);

        run.OnWorkerAvailable(W("c"));
        var reformed = run.OnWorkerLost("b", "killed").Where(c => c is not SendTo).ToList();
        Assert.Equal(new EndReducer(1001), reformed[0]);                  // the old slot closes before the new one opens
        var second = Assert.IsType<GroupFormed>(reformed[1]);
        Assert.Equal((1002, 1), (second.Generation, second.RestartsUsed));
        Assert.Equal(["a", "c"], second.Workers);
        var open2 = Assert.IsType<StartReducer>(reformed[2]);
        Assert.Equal((1002, 2), (open2.Generation, open2.WorldSize));
        Assert.NotEqual(open1.Secret, open2.Secret);

        var end = run.Abandon("gave up").Where(c => c is not SendTo).ToList();
        Assert.Equal(new EndReducer(1002), end[0]);
        Assert.IsType<Finished>(end[1]);
    }

    [Fact]
    public void Only_the_current_groups_steps_and_checkpoints_are_passed_on_to_the_job_manager()
    {
        var run = NewRun(steps: 20, ckpt: 5, window: 5);
        run.OnWorkerAvailable(W("a"));
        run.OnWorkerAvailable(W("b"));
        PrepareAll(run, 0);
        StepCompleted Step(int generation, int rank) => new("job", "pretrain", generation, rank, 0, 1, 1, 1e-3, 100, 0.1, 0.01, 0, null);
        Assert.Empty(run.OnStepCompleted(Step(run.Generation - 1, 0)));   // a report of an older group
        var step = Step(run.Generation, 0);
        Assert.Equal([new StepReported(step)], run.OnStepCompleted(step));

        run.OnStepCompleted(Step(run.Generation, 1));
        var save = Sent<SaveCheckpoint>(CompleteWindow(run, new RunSteps("job", "pretrain", run.Generation, 1, 5, false))).Single();
        var stale = new CheckpointSaved("job", "pretrain", run.Generation - 1, 0, 5, "/old", 0);
        Assert.Empty(run.OnCheckpointSaved(stale));
        var saved = new CheckpointSaved("job", "pretrain", run.Generation, 0, save.Step, "/runs/step-5", 0);
        var after = run.OnCheckpointSaved(saved);
        Assert.Equal(new CheckpointReported(saved), after[0]);
        Assert.Equal("/runs/step-5", run.LastCheckpoint);
    }

    [Fact]
    public void Runs_windows_checkpoints_and_completes()
    {
        var run = NewRun(steps: 20, ckpt: 10, window: 5);
        run.OnWorkerAvailable(W("a"));
        run.OnWorkerAvailable(W("b"));
        var window = Sent<RunSteps>(PrepareAll(run, 0))[0];
        Assert.Equal((0, 5), (window.FromStep, window.ToStep));

        window = Sent<RunSteps>(CompleteWindow(run, window))[0];
        Assert.Equal((5, 10), (window.FromStep, window.ToStep));
        var save = Sent<SaveCheckpoint>(CompleteWindow(run, window)).Single();
        Assert.Equal(10, save.Step);
        Assert.Equal(RunPhase.Checkpointing, run.Phase);

        window = Sent<RunSteps>(run.OnCheckpointSaved(new CheckpointSaved("job", "pretrain", run.Generation, 0, 10, "/ck/10")))[0];
        Assert.Equal((10, 15), (window.FromStep, window.ToStep));
        window = Sent<RunSteps>(CompleteWindow(run, window))[0];
        Sent<SaveCheckpoint>(CompleteWindow(run, window)).Single();
        var end = run.OnCheckpointSaved(new CheckpointSaved("job", "pretrain", run.Generation, 0, 20, "/ck/20"));
        Assert.Equal(RunPhase.Completed, run.Phase);
        Assert.True(end.OfType<Finished>().Single().Succeeded);
    }

    [Fact]
    public void A_lost_worker_rolls_back_to_the_last_checkpoint_with_a_new_generation()
    {
        var run = NewRun(steps: 20, min: 2, max: 3, ckpt: 10, window: 5);
        run.OnWorkersAvailable([W("a"), W("b"), W("c")]);
        var window = Sent<RunSteps>(PrepareAll(run, 0))[0];
        window = Sent<RunSteps>(CompleteWindow(run, window))[0];
        CompleteWindow(run, window);
        run.OnCheckpointSaved(new CheckpointSaved("job", "pretrain", 1, 0, 10, "/ck/10"));
        Assert.Equal(1, run.Generation);

        // Rank 1 dies mid-window at step 12.
        run.OnStepCompleted(new StepCompleted("job", "pretrain", 1, 0, 10, 1, 1, 1, 1, 0, 0, 0, null));
        var cmds = run.OnWorkerLost("b", "process killed");
        Assert.Equal(2, Sent<AbortGroup>(cmds).Count);
        var prep = Sent<PrepareGroup>(cmds);
        Assert.Equal(2, run.Generation);
        Assert.Equal(new[] { 2, 2 }, prep.Select(p => p.WorldSize));
        Assert.All(prep, p => Assert.Equal("/ck/10", p.ResumeFrom));
        Assert.Equal(10, run.NextStep);

        // Stale reports from generation 1 are ignored.
        Assert.Empty(run.OnStepCompleted(new StepCompleted("job", "pretrain", 1, 0, 11, 1, 1, 1, 1, 0, 0, 0, null)));
        window = Sent<RunSteps>(PrepareAll(run, 10))[0];
        Assert.Equal(10, window.FromStep);
    }

    [Fact]
    public void The_restart_budget_bounds_recoveries()
    {
        var run = NewRun(min: 1, max: 2, restarts: 1);
        run.OnWorkerAvailable(W("a"));   // min 1: forms immediately with one worker
        run.OnWorkerLost("a", "killed");
        Assert.Equal(RunPhase.WaitingForWorkers, run.Phase);
        run.OnWorkerAvailable(W("c"));
        var cmds = run.OnWorkerLost("c", "killed again");
        Assert.Equal(RunPhase.Failed, run.Phase);
        Assert.Contains("restart budget", cmds.OfType<Finished>().Single().Summary);
    }

    [Fact]
    public void A_joining_worker_is_admitted_at_the_next_boundary_via_a_checkpoint()
    {
        var run = NewRun(steps: 20, min: 1, max: 3, ckpt: 0, window: 5);
        run.OnWorkerAvailable(W("a"));
        var window = Sent<RunSteps>(PrepareAll(run, 0))[0];
        Assert.Empty(run.OnWorkerAvailable(W("b")));           // mid-window: nothing happens yet
        var save = Sent<SaveCheckpoint>(CompleteWindow(run, window)).Single();
        Assert.Equal(5, save.Step);
        var cmds = run.OnCheckpointSaved(new CheckpointSaved("job", "pretrain", 1, 0, 5, "/ck/5"));
        var prep = Sent<PrepareGroup>(cmds);
        Assert.Equal(2, run.Generation);
        Assert.Equal(new[] { 2, 2 }, prep.Select(p => p.WorldSize));
        Assert.All(prep, p => Assert.Equal("/ck/5", p.ResumeFrom));
    }

    [Fact]
    public void A_checksum_mismatch_stops_the_run_and_names_the_diverged_rank()
    {
        var run = NewRun(steps: 20, min: 3, max: 3, ckpt: 0, checksum: 5, window: 10);
        run.OnWorkersAvailable([W("a"), W("b"), W("c")]);
        var window = Sent<RunSteps>(PrepareAll(run, 0))[0];
        Assert.Equal(5, window.ToStep);
        Assert.True(window.ChecksumAtEnd);
        var cmds = CompleteWindow(run, window, (step, rank) => rank == 2 ? "bad" : "good");
        Assert.Equal(RunPhase.Failed, run.Phase);
        Assert.Contains("rank(s) 2 diverged", cmds.OfType<Finished>().Single().Summary);
    }

    [Fact]
    public void A_session_failure_blames_the_peer_the_data_plane_lost()
    {
        var run = NewRun(min: 2, max: 3, restarts: 2);
        run.OnWorkersAvailable([W("a"), W("b"), W("c")]);
        PrepareAll(run, 0);
        run.OnSessionFailed(new SessionFailed("job", "pretrain", 1, 0, 3, "peer timed out", SuspectRank: 2));
        Assert.Equal(new[] { "a", "b" }, run.Members.Select(m => m.WorkerId));
        Assert.Equal(1, run.RestartsUsed);
    }

    [Fact]
    public void Resuming_at_the_wrong_step_is_an_error_not_silent_drift()
    {
        var run = NewRun(min: 1, max: 1);
        run.OnWorkerAvailable(W("a"));
        var cmds = run.OnPrepared(new GroupPrepared("job", "pretrain", 1, 0, NextStep: 7));
        Assert.Equal(RunPhase.Failed, run.Phase);
        Assert.Contains("expected 0", cmds.OfType<Finished>().Single().Summary);
    }

    [Fact]
    public void A_run_that_gets_no_workers_can_be_abandoned_with_a_reason()
    {
        var run = NewRun(min: 2);
        run.OnWorkerAvailable(W("a"));
        var cmds = run.Abandon("fewer than 2 workers were free for 300 s");
        Assert.Equal(RunPhase.Failed, run.Phase);
        Assert.Contains("fewer than 2", cmds.OfType<Finished>().Single().Summary);
        Assert.Empty(run.Abandon("again"));
    }
    [Fact]
    public void A_stop_request_finishes_the_window_saves_a_checkpoint_and_stops()
    {
        var run = NewRun(steps: 20, ckpt: 0, window: 5);
        run.OnWorkerAvailable(W("a"));
        run.OnWorkerAvailable(W("b"));
        var window = Sent<RunSteps>(PrepareAll(run, 0))[0];
        Assert.Empty(run.RequestStop("cancelled by the user"));      // mid-window: the ranks finish it first
        var save = Sent<SaveCheckpoint>(CompleteWindow(run, window)).Single();
        Assert.Equal(5, save.Step);
        var end = run.OnCheckpointSaved(new CheckpointSaved("job", "pretrain", run.Generation, 0, 5, "/ck/5"));
        Assert.Equal(RunPhase.Stopped, run.Phase);
        var finished = end.OfType<Finished>().Single();
        Assert.True(finished.Stopped);
        Assert.False(finished.Succeeded);
        Assert.Contains("checkpoint of step 5 kept", finished.Summary);
        Assert.Equal(2, Sent<AbortGroup>(end).Count);
        Assert.Equal("/ck/5", run.LastCheckpoint);
    }

    [Fact]
    public void A_stop_request_before_the_group_runs_stops_at_once()
    {
        var run = NewRun();
        var end = run.RequestStop("cancelled");
        Assert.Equal(RunPhase.Stopped, run.Phase);
        Assert.True(end.OfType<Finished>().Single().Stopped);
        Assert.Empty(run.OnWorkerAvailable(W("a")));                  // a stopped run takes no workers
    }

    [Fact]
    public void Each_generation_hands_its_members_one_fresh_32_byte_data_plane_secret()
    {
        var run = NewRun(min: 2, max: 3);
        var first = Sent<PrepareGroup>(run.OnWorkersAvailable([W("a"), W("b"), W("c")]));
        Assert.All(first, p => Assert.Equal(32, p.GroupSecret.Length));
        Assert.All(first, p => Assert.Equal(run.GroupSecret, p.GroupSecret));         // the members and the reducer hold the same one
        Assert.Contains(first[0].GroupSecret, b => b != 0);
        var firstSecret = run.GroupSecret.ToArray();

        var second = Sent<PrepareGroup>(run.OnWorkerLost("b", "killed"));           // re-formed: generation 2
        Assert.Equal(2, second.Count);
        Assert.All(second, p => Assert.Equal(run.GroupSecret, p.GroupSecret));
        Assert.NotEqual(firstSecret, run.GroupSecret);                               // a dropped member cannot rejoin with the old one
        Assert.DoesNotContain(Convert.ToHexString(run.GroupSecret), second[0].ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_resumed_run_starts_from_the_recorded_checkpoint_with_generations_apart()
    {
        var run = new DataParallelRun("job", "pretrain", "spec", new RunLimits(20, 2, 2, 1, 10, 0, 5), resume: new RunResume("/ck/10", 10), firstGeneration: 2000);
        run.OnWorkerAvailable(W("a"));
        var prep = Sent<PrepareGroup>(run.OnWorkerAvailable(W("b")));
        Assert.All(prep, p => Assert.Equal("/ck/10", p.ResumeFrom));
        Assert.All(prep, p => Assert.Equal(2001, p.Generation));
        var window = Sent<RunSteps>(PrepareAll(run, 10))[0];
        Assert.Equal((10, 15), (window.FromStep, window.ToStep));
    }
}
