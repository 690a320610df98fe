using DistTrain.Execution;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// The job manager's decisions without an ActorSystem: the book and what is in flight go in, commands come out.
/// <see cref="Persisted"/> plays the journal: it applies the records a call returned, as the actor does once they are
/// written, before the next call.
/// </summary>
public sealed class JobSchedulerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    private static (JobScheduler Scheduler, JobEntry Job) Submitted(Func<string, string, IReadOnlyDictionary<string, double>>? metrics = null)
    {
        var book = new JobBook();
        var job = book.Apply(new JobSubmitted("j1", "tiny", 0, JobBookTests.Pipeline(), false, T0));
        return (new JobScheduler(book, metrics ?? ((_, _) => new Dictionary<string, double> { ["loss"] = 2.0 })), job);
    }

    /// <summary>Applies the records of <paramref name="commands"/> to the book and returns the other commands.</summary>
    private static List<SchedulerCommand> Persisted(JobScheduler scheduler, IReadOnlyList<SchedulerCommand> commands)
    {
        foreach (var r in commands.OfType<RecordFact>()) scheduler.Book.Apply(r.Fact);
        return commands.Where(c => c is not RecordFact).ToList();
    }

    /// <summary>The coordinator formed the stage's first group: the stage runs.</summary>
    private static void Started(JobScheduler scheduler, string stage) =>
        Persisted(scheduler, scheduler.OnGenerationStarted(new GenerationStarted("j1", stage, 1000, ["w0"], 0), T0));

    /// <summary>The first <paramref name="count"/> stages as journaled successes, without the scheduler.</summary>
    private static void Succeeded(JobScheduler scheduler, int count)
    {
        foreach (var stage in scheduler.Book.Find("j1")!.Stages.Take(count))
        {
            scheduler.Book.Apply(new StageStarted("j1", stage.Name, ["w0"], T0));
            scheduler.Book.Apply(new StageEnded("j1", stage.Name, JobState.Succeeded, null, new Dictionary<string, double>(), T0));
        }
    }

    private static StageFinished Finished(string stage, bool ok = true, bool stopped = false, int restarts = 0) =>
        new("j1", stage, ok, ok ? "done" : "failed at step 3", null, restarts, stopped);

    [Fact]
    public void Stages_are_dispatched_along_the_dag_each_exactly_once()
    {
        var (scheduler, job) = Submitted();
        var first = scheduler.Schedule(T0);
        Assert.Equal(new StageDispatched("j1", "pretrain", 1, T0), Assert.IsType<RecordFact>(first[0]).Fact);
        var run = Assert.IsType<RunStage>(Assert.IsType<SendToCoordinator>(first[1]).Request);
        Assert.Equal(("pretrain", 1000, 0, (RunResume?)null), (run.Stage, run.FirstGeneration, run.RestartsUsed, run.Resume));
        Assert.Equal(2, first.Count);
        Persisted(scheduler, first);

        // Deciding again before anything happened dispatches nothing: the stage is in flight.
        Assert.Empty(scheduler.Schedule(T0));

        Persisted(scheduler, scheduler.OnGenerationStarted(new GenerationStarted("j1", "pretrain", 1000, ["w0", "w1"], 0), T0));
        Assert.Equal(JobState.Running, job.Stage("pretrain").State);
        var end = Persisted(scheduler, scheduler.OnStageFinished(Finished("pretrain", restarts: 1), T0));
        Assert.Equal([new WriteReport("j1")], end);
        Assert.Equal(new Dictionary<string, double> { ["loss"] = 2.0, ["restarts"] = 1 }, job.Stage("pretrain").Metrics);
        Assert.False(scheduler.IsInFlight("j1", "pretrain"));

        var next = scheduler.Schedule(T0);
        Assert.Equal("teacher", Assert.IsType<RunStage>(Assert.IsType<SendToCoordinator>(next[1]).Request).Stage);
    }

    [Fact]
    public void A_label_stage_runs_its_shards_on_the_workers_then_merges_them_locally()
    {
        var (scheduler, job) = Submitted();
        foreach (var stage in new[] { "pretrain", "teacher" })
        {
            Persisted(scheduler, scheduler.Schedule(T0));
            Started(scheduler, stage);
            Persisted(scheduler, scheduler.OnStageFinished(Finished(stage), T0));
        }
        var label = Persisted(scheduler, scheduler.Schedule(T0));
        var request = Assert.IsType<RunInference>(Assert.IsType<SendToCoordinator>(Assert.Single(label)).Request);
        Assert.Equal(("label", LabelShards.Count(job.Stage("label").Spec)), (request.Stage, request.ShardCount));
        Started(scheduler, "label");

        var merge = Persisted(scheduler, scheduler.OnStageFinished(Finished("label"), T0));
        Assert.Equal([new RunLocally("j1", "label", LocalWork.MergeLabels)], merge);
        Assert.True(scheduler.IsInFlight("j1", "label"));
        Assert.NotEqual(JobState.Succeeded, job.Stage("label").State);   // not before the merge

        var done = Persisted(scheduler, scheduler.OnLocalDone("j1", "label", new Dictionary<string, double> { ["examples"] = 64 }, null, T0));
        Assert.Equal([new WriteReport("j1")], done);
        Assert.Equal(JobState.Succeeded, job.Stage("label").State);
    }

    [Fact]
    public void An_evaluate_stage_runs_on_one_worker_as_one_shard_and_keeps_the_metrics_it_wrote()
    {
        var (scheduler, job) = Submitted((_, stage) => new Dictionary<string, double> { ["accuracy"] = 0.75 });
        Succeeded(scheduler, 4);
        var commands = Persisted(scheduler, scheduler.Schedule(T0));
        var request = Assert.IsType<RunInference>(Assert.IsType<SendToCoordinator>(Assert.Single(commands)).Request);
        Assert.Equal(("evaluate", 1, 1), (request.Stage, request.ShardCount, request.MaxWorkers));
        Started(scheduler, "evaluate");
        Assert.Equal([new WriteReport("j1")], Persisted(scheduler, scheduler.OnStageFinished(Finished("evaluate"), T0)));
        Assert.Equal(new Dictionary<string, double> { ["accuracy"] = 0.75 }, job.Stage("evaluate").Metrics);   // no restart count: it does not train
    }

    [Fact]
    public void Cancelling_stops_what_runs_once_then_ends_the_job_when_the_stop_is_confirmed()
    {
        var (scheduler, job) = Submitted();
        Persisted(scheduler, scheduler.Schedule(T0));
        Started(scheduler, "pretrain");
        Persisted(scheduler, scheduler.Cancel(job, T0));
        Assert.Empty(scheduler.Cancel(job, T0));   // asked twice, recorded once

        var stop = Persisted(scheduler, scheduler.Schedule(T0));
        Assert.Equal([new SendToCoordinator(new StopStage("j1", "pretrain", "the job was cancelled"))], stop);
        Assert.Empty(scheduler.Schedule(T0));   // the stop is not sent twice, and the job waits for it

        Persisted(scheduler, scheduler.OnStageFinished(Finished("pretrain", ok: false, stopped: true), T0));
        Assert.Equal(JobState.Cancelled, job.Stage("pretrain").State);
        Persisted(scheduler, scheduler.Schedule(T0));
        Assert.Equal(JobState.Cancelled, job.State);
        Assert.All(job.Stages, s => Assert.Equal(JobState.Cancelled, s.State));
    }

    [Fact]
    public void Cancelling_while_label_shards_are_merged_cancels_the_merge_and_its_cancellation_ends_the_stage_as_cancelled()
    {
        var (scheduler, job) = Submitted();
        Succeeded(scheduler, 2);
        Persisted(scheduler, scheduler.Schedule(T0));
        Started(scheduler, "label");
        Assert.Equal([new RunLocally("j1", "label", LocalWork.MergeLabels)], Persisted(scheduler, scheduler.OnStageFinished(Finished("label"), T0)));
        Persisted(scheduler, scheduler.Cancel(job, T0));
        Assert.Equal([new CancelLocal("j1", "label")], Persisted(scheduler, scheduler.Schedule(T0)));
        Persisted(scheduler, scheduler.OnLocalDone("j1", "label", null, new OperationCanceledException(), T0));
        Assert.Equal(JobState.Cancelled, job.Stage("label").State);
    }

    [Fact]
    public void A_failed_stage_fails_the_job_and_cancels_what_waits()
    {
        var (scheduler, job) = Submitted();
        Persisted(scheduler, scheduler.Schedule(T0));
        Started(scheduler, "pretrain");
        Persisted(scheduler, scheduler.OnStageFinished(Finished("pretrain", ok: false), T0));
        Assert.Equal(JobState.Failed, job.Stage("pretrain").State);
        var settle = scheduler.Schedule(T0);
        Assert.Equal(5, settle.Count);   // four queued stages cancelled, then the job ended
        Assert.Equal(JobState.Failed, Assert.IsType<JobEnded>(Assert.IsType<RecordFact>(settle[^1]).Fact).State);
        Persisted(scheduler, settle);
        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("failed at step 3", job.Error);
    }

    [Fact]
    public void Metrics_that_cannot_be_read_fail_the_stage_with_the_reason()
    {
        var (scheduler, job) = Submitted((_, stage) => throw new FileNotFoundException($"stage '{stage}' wrote no metrics"));
        Persisted(scheduler, scheduler.Schedule(T0));
        Started(scheduler, "pretrain");
        var end = Persisted(scheduler, scheduler.OnStageFinished(Finished("pretrain"), T0));
        Assert.Empty(end);   // no report for a failure
        Assert.Equal(JobState.Failed, job.Stage("pretrain").State);
        Assert.Contains("its metrics could not be read: stage 'pretrain' wrote no metrics", job.Stage("pretrain").Error);
    }

    [Fact]
    public void Progress_is_recorded_at_most_once_a_second_per_rank_and_always_at_the_last_step()
    {
        var (scheduler, job) = Submitted();
        Persisted(scheduler, scheduler.Schedule(T0));
        StepCompleted Step(int rank, int step) => new("j1", "pretrain", 1000, rank, step, 1.0, 0.5, 1e-3, 100, 0.5, 0.1, 0.01, null);
        Assert.Single(scheduler.OnStep(Step(0, 0), T0));
        Assert.Empty(scheduler.OnStep(Step(0, 1), T0.AddMilliseconds(500)));
        Assert.Single(scheduler.OnStep(Step(1, 1), T0.AddMilliseconds(500)));   // another rank
        Assert.Single(scheduler.OnStep(Step(0, 2), T0.AddSeconds(1)));
        int last = job.Stage("pretrain").TotalSteps - 1;
        var recorded = Assert.IsType<StageProgressed>(Assert.IsType<RecordFact>(Assert.Single(scheduler.OnStep(Step(0, last), T0.AddSeconds(1.1)))).Fact);
        Assert.Equal((last, 200.0), (recorded.Step, recorded.TokensPerSecond));
    }

    [Fact]
    public void After_recovery_running_stages_are_requeued_and_resume_from_their_checkpoint_with_their_restarts()
    {
        var (scheduler, job) = Submitted();
        var book = scheduler.Book;
        book.Apply(new StageDispatched("j1", "pretrain", 1, T0));
        book.Apply(new StageStarted("j1", "pretrain", ["w0", "w1"], T0));
        book.Apply(new StageRestarted("j1", "pretrain", 1, "re-formed", T0));
        book.Apply(new StageCheckpointed("j1", "pretrain", 2, "/runs/j1/pretrain/checkpoints/step-2", T0));

        var requeued = Assert.IsType<StageRequeued>(Assert.IsType<RecordFact>(Assert.Single(scheduler.Recovered(T0))).Fact);
        Assert.Contains("resuming from its checkpoint of step 2", requeued.Reason);
        Persisted(scheduler, [new RecordFact(requeued)]);

        var run = Assert.IsType<RunStage>(Assert.IsType<SendToCoordinator>(scheduler.Schedule(T0)[1]).Request);
        Assert.Equal((2000, 1, "/runs/j1/pretrain/checkpoints/step-2"), (run.FirstGeneration, run.RestartsUsed, run.Resume?.Checkpoint));
    }
}
