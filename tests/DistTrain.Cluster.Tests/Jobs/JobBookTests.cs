using Akka.Actor;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>The job book's transition table and scheduling answers, driven by journal records: no actors, no database.</summary>
public sealed class JobBookTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    /// <summary>pretrain → teacher → label → student → evaluate, as in examples/brown-pipeline.yaml but tiny.</summary>
    public static string Pipeline(string name = "tiny", int priority = 0) => $$$"""
        name: {{{name}}}
        seed: 3
        priority: {{{priority}}}
        defaults:
          model: {family: roberta, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512, dropout: 0.0}
          data: {corpus: brown, seq_len: 32, max_examples: 64}
          train: {steps: 4, batch_size: 8, lr: 1.0e-3}
          distributed: {workers: 1}
        stages:
          - {name: pretrain, kind: pretrain, objective: mlm}
          - {name: teacher, kind: finetune, inputs: {init: pretrain}, objective: {kind: classification, task: genre}}
          - {name: label, kind: label, inputs: {teacher: teacher}, data: {split: all}, outputs: {soft_labels: true} }
          - name: student
            kind: distill
            model: {layers: 1, hidden: 16, heads: 2, ffn: 32}
            inputs: {teacher: teacher, labels: label}
            objective: {kind: distill, max_param_ratio: 0.6}
            data: {split: train}
          - {name: evaluate, kind: evaluate, inputs: {init: student, teacher: teacher}, data: {split: test}}
        """;

    /// <summary>Every event the books of a test emitted, in order (the book numbers them but does not keep them).</summary>
    private readonly List<JobEvent> _events = new();

    private (JobBook Book, JobEntry Job) Submitted(string id = "j1", int priority = 0)
    {
        var book = new JobBook((_, e) => _events.Add(e));
        var job = book.Apply(new JobSubmitted(id, "tiny", priority, Pipeline(priority: priority), false, T0));
        return (book, job);
    }

    private static readonly IReadOnlyDictionary<string, double> NoMetrics = new Dictionary<string, double>();

    [Fact]
    public void A_submitted_job_is_queued_and_only_stages_without_unmet_dependencies_are_ready()
    {
        var (_, job) = Submitted();
        Assert.Equal(JobState.Queued, job.State);
        Assert.Equal(["pretrain", "teacher", "label", "student", "evaluate"], job.Stages.Select(s => s.Name));
        Assert.All(job.Stages, s => Assert.Equal(JobState.Queued, s.State));
        Assert.Equal(["pretrain"], JobBook.Ready(job).Select(s => s.Name));
        Assert.Equal(5, _events.Count);                              // one StageChanged per stage
        Assert.Equal([1L, 2, 3, 4, 5], _events.Select(e => e.Sequence));
    }

    [Fact]
    public void Stages_follow_the_dag_and_the_job_succeeds_when_every_stage_did()
    {
        var (book, job) = Submitted();
        foreach (var stage in new[] { "pretrain", "teacher", "label", "student", "evaluate" })
        {
            Assert.Equal([stage], JobBook.Ready(job).Select(s => s.Name));
            book.Apply(new StageDispatched("j1", stage, 1, T0));
            book.Apply(new StageStarted("j1", stage, ["w0"], T0));
            Assert.Equal(JobState.Running, job.State);
            Assert.Empty(JobBook.Ready(job));
            Assert.Null(JobBook.Settlement(job, anythingInFlight: false));
            book.Apply(new StageEnded("j1", stage, JobState.Succeeded, null, new Dictionary<string, double> { ["loss"] = 1.5 }, T0));
        }
        var end = JobBook.Settlement(job, false);
        Assert.NotNull(end);
        Assert.Equal(JobState.Succeeded, end.Value.State);
        Assert.Empty(end.Value.CancelQueued);
        book.Apply(new JobEnded("j1", JobState.Succeeded, null, T0));
        var last = Assert.IsType<JobFinished>(_events[^1].Body);
        Assert.Equal(JobState.Succeeded, last.Job.State);
        Assert.Equal(Enumerable.Range(1, _events.Count).Select(i => (long)i), _events.Select(e => e.Sequence));
        Assert.Throws<InvalidOperationException>(() => book.Apply(new JobEnded("j1", JobState.Failed, "again", T0)));
    }

    [Fact]
    public void A_failed_stage_stops_the_job_cancels_what_waits_and_fails_it_once_nothing_runs()
    {
        var (book, job) = Submitted();
        book.Apply(new StageStarted("j1", "pretrain", ["w0"], T0));
        book.Apply(new StageEnded("j1", "pretrain", JobState.Failed, "NaN loss at step 3", NoMetrics, T0));
        Assert.True(job.Stopping);
        Assert.Empty(JobBook.Ready(job));
        Assert.Null(JobBook.Settlement(job, anythingInFlight: true));   // a stop still in flight: wait for it
        var end = JobBook.Settlement(job, false)!.Value;
        Assert.Equal(JobState.Failed, end.State);
        Assert.Equal(["teacher", "label", "student", "evaluate"], end.CancelQueued.Select(s => s.Name));
        Assert.Contains("NaN loss at step 3", end.Error);
        Assert.Contains(_events, e => e.Body is JobError err && err.Message.Contains("NaN loss"));
    }

    [Fact]
    public void Cancelling_a_running_job_waits_for_its_stage_to_stop_then_cancels_the_rest()
    {
        var (book, job) = Submitted();
        book.Apply(new StageStarted("j1", "pretrain", ["w0"], T0));
        book.Apply(new JobCancelRequested("j1", T0));
        Assert.Null(JobBook.Settlement(job, false));                      // pretrain still running
        book.Apply(new StageEnded("j1", "pretrain", JobState.Cancelled, "stopped at step 2", NoMetrics, T0));
        var end = JobBook.Settlement(job, false)!.Value;
        Assert.Equal(JobState.Cancelled, end.State);
        Assert.Equal(4, end.CancelQueued.Count);
    }

    [Fact]
    public void A_requeued_stage_keeps_its_checkpoint_for_the_next_attempt()
    {
        var (book, job) = Submitted();
        book.Apply(new StageDispatched("j1", "pretrain", 1, T0));
        book.Apply(new StageStarted("j1", "pretrain", ["w0", "w1"], T0));
        book.Apply(new StageCheckpointed("j1", "pretrain", 2, "/runs/j1/pretrain/checkpoints/step-2", T0));
        book.Apply(new StageRequeued("j1", "pretrain", "the coordinator restarted", T0));
        var stage = job.Stage("pretrain");
        Assert.Equal(JobState.Queued, stage.State);
        Assert.Equal(("/runs/j1/pretrain/checkpoints/step-2", 2), stage.Checkpoint);
        Assert.Contains(_events, e => e.Body is StageCheckpointSaved { Stage: "pretrain", Step: 2 });
        Assert.Equal(1, stage.Attempts);
        Assert.Equal(["pretrain"], JobBook.Ready(job).Select(s => s.Name));
        Assert.Contains(_events, e => e.Body is StageChanged { Stage.State: JobState.Queued } && e.Sequence > 5);
    }

    [Fact]
    public void Impossible_transitions_are_refused()
    {
        var (book, _) = Submitted();
        Assert.Throws<InvalidOperationException>(() => book.Apply(new StageEnded("j1", "pretrain", JobState.Succeeded, null, NoMetrics, T0)));   // never started
        Assert.Throws<InvalidOperationException>(() => book.Apply(new StageRequeued("j1", "pretrain", "x", T0)));
        Assert.Throws<InvalidOperationException>(() => book.Apply(new JobEnded("j1", JobState.Running, null, T0)));
        Assert.Throws<InvalidOperationException>(() => book.Apply(new StageStarted("nope", "pretrain", [], T0)));
        Assert.Throws<KeyNotFoundException>(() => book.Apply(new StageStarted("j1", "nope", [], T0)));
    }

    [Fact]
    public void Live_jobs_are_served_by_priority_then_submission()
    {
        var book = new JobBook();
        book.Apply(new JobSubmitted("low-1", "tiny", 0, Pipeline(priority: 0), false, T0));
        book.Apply(new JobSubmitted("high", "tiny", 7, Pipeline(priority: 7), false, T0));
        book.Apply(new JobSubmitted("low-2", "tiny", 0, Pipeline(priority: 0), false, T0));
        Assert.Equal(["high", "low-1", "low-2"], book.Live().Select(j => j.JobId));
        Assert.Equal((3, 0), book.Counts());
    }

    [Fact]
    public void Every_journal_record_survives_the_serializer()
    {
        var serializer = new JobJournalSerializer(null!);
        IJobJournalEvent[] records =
        [
            new JobSubmitted("j1", "tiny", 2, Pipeline(), true, T0),
            new StageDispatched("j1", "pretrain", 3, T0),
            new StageStarted("j1", "pretrain", ["w0", "w1"], T0),
            new StageProgressed("j1", "pretrain", 1, 7, 20, 3.25, 1234.5, T0),
            new StageCheckpointed("j1", "pretrain", 10, "/ck/10", T0),
            new StageEnded("j1", "pretrain", JobState.Succeeded, null, new Dictionary<string, double> { ["perplexity"] = 41.5 }, T0),
            new StageRequeued("j1", "teacher", "restart", T0),
            new JobCancelRequested("j1", T0),
            new JobNoted("j1", "worker lost", T0),
            new JobEnded("j1", JobState.Cancelled, "cancelled by request", T0),
        ];
        foreach (var r in records)
        {
            var back = serializer.FromBinary(serializer.ToBinary(r), serializer.Manifest(r));
            Assert.Equal(r.GetType(), back.GetType());
            Assert.Equal(System.Text.Json.JsonSerializer.Serialize(r, r.GetType()), System.Text.Json.JsonSerializer.Serialize(back, back.GetType()));
        }
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "NoSuchRecord"));
    }

    [Fact]
    public async Task Restarts_used_survive_a_recovery_from_the_journal_and_count_against_the_next_attempt()
    {
        // What the journal holds when a coordinator dies after its stage lost a worker twice: every record goes through
        // the journal's own serializer, and a fresh book replays them, as the job manager does when its singleton moves.
        IJobJournalEvent[] records =
        [
            new JobSubmitted("j1", "tiny", 0, Pipeline(), false, T0),
            new StageDispatched("j1", "pretrain", 1, T0),
            new StageStarted("j1", "pretrain", ["w1", "w2"], T0),
            new StageCheckpointed("j1", "pretrain", 2, "/ck/2", T0),
            new StageRestarted("j1", "pretrain", 1, "stage pretrain: group re-formed with 1 worker(s) (generation 1002, 1 restart(s) used)", T0),
            new StageRestarted("j1", "pretrain", 2, "stage pretrain: group re-formed with 1 worker(s) (generation 1003, 2 restart(s) used)", T0),
            new StageRequeued("j1", "pretrain", "the coordinator restarted; resuming from its checkpoint of step 2", T0),
        ];
        var system = ActorSystem.Create("journal-roundtrip");
        try
        {
            var serializer = new JobJournalSerializer((ExtendedActorSystem)system);
            var recovered = new JobBook();
            foreach (var record in records)
                recovered.Apply((IJobJournalEvent)serializer.FromBinary(serializer.ToBinary(record), serializer.Manifest(record)));
            var job = recovered.Find("j1")!;
            var stage = job.Stage("pretrain");
            Assert.Equal(JobState.Queued, stage.State);
            Assert.Equal(2, stage.Restarts);

            // The next attempt asks the coordinator to count on from 2 (and to resume from the checkpoint) ...
            var request = JobScheduler.RunRequest(job, stage, attempt: 2);
            Assert.Equal(2, request.RestartsUsed);
            Assert.Equal(new RunResume("/ck/2", 2), request.Resume);
            Assert.Equal(3, request.Limits.MaxRestarts);   // the spec's default budget

            // ... so its run allows one more lost worker, not three, and reports 3 restarts in all.
            var run = new DataParallelRun(request.JobId, request.Stage, request.SpecYaml, request.Limits, quick: request.Quick,
                resume: request.Resume, firstGeneration: request.FirstGeneration, restartsUsed: request.RestartsUsed);
            var worker = new WorkerSlot("w3", "node-3", "cpu", new DataPlaneEndpoint("127.0.0.1", 9003));
            run.OnWorkerAvailable(worker);
            run.OnWorkerLost("w3", "killed");
            Assert.Equal(RunPhase.WaitingForWorkers, run.Phase);
            Assert.Equal(3, run.RestartsUsed);
            run.OnWorkerAvailable(worker with { WorkerId = "w4" });
            var failed = run.OnWorkerLost("w4", "killed again").OfType<Finished>().Single();
            Assert.Equal(RunPhase.Failed, run.Phase);
            Assert.Contains("restart budget of 3 spent", failed.Summary);
        }
        finally { await system.Terminate(); }
    }

    [Fact]
    public void A_re_formed_group_that_used_no_restart_changes_no_count()
    {
        var (book, job) = Submitted();
        book.Apply(new StageDispatched("j1", "pretrain", 1, T0));
        book.Apply(new StageStarted("j1", "pretrain", ["w1"], T0));
        book.Apply(new JobNoted("j1", "stage pretrain: group re-formed with 2 worker(s) (generation 1002, 0 restart(s) used)", T0));
        Assert.Equal(0, job.Stage("pretrain").Restarts);
        Assert.Equal(0, JobScheduler.RunRequest(job, job.Stage("pretrain"), 2).RestartsUsed);
    }
}
