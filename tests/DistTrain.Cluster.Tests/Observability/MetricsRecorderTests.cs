using DistTrain.Execution;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Observability;
using DistTrain.Cluster.Worker;
using DistTrain.Contracts.Protocols;
using DistTrain.Training.Engine;
using Prometheus;

namespace DistTrain.Cluster.Tests.Observability;

/// <summary>Events in, the exported text out: the recorder on its own registry, no actor system.</summary>
public sealed class MetricsRecorderTests
{
    private static (MetricsRecorder Recorder, CollectorRegistry Registry) New(string roles, int finishedJobsKept = 20)
    {
        var registry = Metrics.NewCustomRegistry();
        var metrics = new DistTrainMetrics(registry, "10.0.0.1:4053", roles.Split(','));
        return (new MetricsRecorder(metrics, finishedJobsKept), registry);
    }

    private static StepCompleted Step(int rank, int step, string job = "j1", int generation = 1, double stepSeconds = 0.5, double reduceSeconds = 0.1,
        double loss = 2.5, long targets = 1000, long bytes = 4096, double commSeconds = 0.13) =>
        new(job, "lm", generation, rank, step, loss, 0.8, 3e-4, targets, stepSeconds, reduceSeconds, 0.02, null, bytes, commSeconds);

    private static (string, string)[] Rank(string job, int rank, string node = "10.0.0.2:4053") => [("job_id", job), ("stage", "lm"), ("rank", rank.ToString()), ("node", node)];

    [Fact]
    public async Task A_workers_step_reports_become_its_rank_series()
    {
        var (r, registry) = New("worker");
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", Step(1, 0, stepSeconds: 0.5, bytes: 4096)));
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", Step(1, 1, stepSeconds: 0.25, loss: 2.25, bytes: 4096)));
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", new CheckpointSaved("j1", "lm", 1, 1, 2, "/ckpt", 1.5)));
        var s = await Exposition.ScrapeAsync(registry);

        var rank = Rank("j1", 1);
        Assert.Equal(2, s.Single("disttrain_step_seconds_count", rank));
        Assert.Equal(0.75, s.Single("disttrain_step_seconds_sum", rank), 12);
        Assert.Equal(1, s.Single("disttrain_step_seconds_bucket", [.. rank, ("le", "0.32")]));   // 0.25 s ≤ 0.32 < 0.5 s
        Assert.Equal(2, s.Single("disttrain_steps_total", rank));
        Assert.Equal(1000 / 0.25, s.Single("disttrain_tokens_per_second", rank), 9);
        Assert.Equal(2.25, s.Single("disttrain_loss", rank));
        Assert.Equal(0.8, s.Single("disttrain_gradient_norm", rank));
        Assert.Equal(3e-4, s.Single("disttrain_learning_rate", rank));
        Assert.Equal(0.04, s.Single("disttrain_data_wait_seconds_sum", rank), 12);
        Assert.Equal(0.2, s.Single("disttrain_allreduce_seconds_sum", rank), 12);
        Assert.Equal(0.06, s.Single("disttrain_allreduce_hidden_seconds_sum", rank), 12);   // 2 × (0.13 in all-reduces − 0.1 waited for)
        Assert.Equal(8192, s.Single("disttrain_allreduce_bytes_total", rank));
        Assert.Equal(1.5, s.Single("disttrain_checkpoint_seconds_sum", rank));
        Assert.Equal(0, s.Single("disttrain_nonfinite_steps_total", rank));
        Assert.Equal(1, s.Single("disttrain_node_info", ("node", "10.0.0.1:4053"), ("roles", "worker")));
        Assert.NotEmpty(s.Find("process_working_set_bytes"));
        Assert.Empty(s.Find("disttrain_straggler_gap_seconds"));   // a coordinator's figure
        Assert.Empty(s.Find("disttrain_job_queue_length"));
    }

    [Fact]
    public async Task A_worker_that_joins_another_group_drops_its_old_rank_series()
    {
        var (r, registry) = New("worker");
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", Step(1, 0)));
        r.Record(new WorkerReport("10.0.0.2:4053/cuda:0", Step(2, 0)));
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", Step(0, 1, generation: 2)));   // re-formed group: rank 1 became rank 0
        var s = await Exposition.ScrapeAsync(registry);
        Assert.Empty(s.Find("disttrain_loss", Rank("j1", 1)));
        Assert.Equal(2, s.Find("disttrain_loss", ("job_id", "j1")).Count);
        Assert.Empty(s.Find("disttrain_step_seconds_count", Rank("j1", 1)));
    }

    [Fact]
    public async Task A_non_finite_step_counts_and_turns_the_loss_into_NaN()
    {
        var (r, registry) = New("worker");
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", Step(0, 0)));
        var failed = new SessionFailed("j1", "lm", 1, 0, 1, "step 1: the loss is not finite", null);
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", failed, new NonFiniteLossException(1, "the loss")));
        r.Record(new WorkerReport("10.0.0.2:4053/cpu", failed with { Reason = "peer lost" }, new IOException("peer lost")));
        var s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(1, s.Single("disttrain_nonfinite_steps_total", Rank("j1", 0)));
        Assert.True(double.IsNaN(s.Single("disttrain_loss", Rank("j1", 0))));
    }

    [Fact]
    public async Task The_coordinator_attributes_stragglers_counts_tokens_once_and_counts_restarts()
    {
        var (r, registry) = New("coordinator");
        r.Record(new GenerationStarted("j1", "lm", 1, ["10.0.0.2:4053/cpu", "10.0.0.3:4053/cpu", "10.0.0.4:4053/cpu"], 0));
        // Rank 2 worked 0.8 s, ranks 0 and 1 worked 0.3 s and waited for it in the all-reduce.
        r.Record(Step(0, 0, stepSeconds: 1.0, reduceSeconds: 0.7));
        r.Record(Step(1, 0, stepSeconds: 1.0, reduceSeconds: 0.7));
        r.Record(Step(2, 0, stepSeconds: 1.0, reduceSeconds: 0.2));
        var s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(0.5, s.Single("disttrain_straggler_gap_seconds", Rank("j1", 2, "10.0.0.4:4053")), 12);
        Assert.Equal(0, s.Single("disttrain_straggler_gap_seconds", Rank("j1", 0, "10.0.0.2:4053")), 12);
        Assert.Equal(0.3, s.Single("disttrain_step_busy_median_seconds", ("job_id", "j1"), ("stage", "lm")), 12);
        Assert.Equal(1000, s.Single("disttrain_tokens_total", ("job_id", "j1"), ("stage", "lm")));   // once, not per rank
        Assert.Equal(3, s.Single("disttrain_stage_world_size", ("job_id", "j1")));
        Assert.Equal(0, s.Single("disttrain_worker_restarts_total", ("job_id", "j1")));

        r.Record(new WorkerLost("10.0.0.4:4053/cpu", "node unreachable"));
        r.Record(new GenerationStarted("j1", "lm", 2, ["10.0.0.2:4053/cpu", "10.0.0.3:4053/cpu"], 1));
        s = await Exposition.ScrapeAsync(registry);
        Assert.Empty(s.Find("disttrain_straggler_gap_seconds"));   // ranks re-assigned: old gaps would name the wrong nodes
        Assert.Equal(1, s.Single("disttrain_worker_restarts_total", ("job_id", "j1")));
        Assert.Equal(1, s.Single("disttrain_workers_lost_total"));
        Assert.Equal(2, s.Single("disttrain_stage_generation", ("job_id", "j1")));

        r.Record(Step(0, 1, generation: 2));
        r.Record(Step(1, 1, generation: 2));
        Assert.NotEmpty((await Exposition.ScrapeAsync(registry)).Find("disttrain_straggler_gap_seconds"));
        r.Record(new StageFinished("j1", "lm", true, "done", null, 1));
        s = await Exposition.ScrapeAsync(registry);
        Assert.Empty(s.Find("disttrain_straggler_gap_seconds"));   // a finished stage has no straggler to alert on
        Assert.Empty(s.Find("disttrain_step_busy_median_seconds"));
        Assert.Equal(1, s.Single("disttrain_worker_restarts_total", ("job_id", "j1")));

        // Dispatched again after a coordinator restart: a new run, whose restart count starts from zero.
        r.Record(new GenerationStarted("j1", "lm", 1001, ["10.0.0.2:4053/cpu"], 0));
        r.Record(new GenerationStarted("j1", "lm", 1002, ["10.0.0.2:4053/cpu"], 1));
        r.Record(new StageFinished("j1", "lm", false, "restart budget spent", null, 2));
        Assert.Equal(3, (await Exposition.ScrapeAsync(registry)).Single("disttrain_worker_restarts_total", ("job_id", "j1")));
    }

    private static JobActivity Activity(string job, long seq, JobEventBody body) => new(job, "tiny-dp", new JobEvent(seq, DateTimeOffset.UtcNow, body));

    private static StageView View(string stage, JobState state, int step = 0, int total = 20) => new(stage, "pretrain", state, step, total, new Dictionary<string, double>());

    [Fact]
    public async Task Job_events_become_job_and_stage_states_progress_and_the_queue()
    {
        var (r, registry) = New("coordinator");
        var s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(0, s.Single("disttrain_jobs_finished_total", ("state", "failed")));   // published at zero for increase()
        Assert.Equal(0, s.Single("disttrain_job_queue_length"));

        r.Record(new JobQueueChanged(2, 0));
        r.Record(Activity("j1", 1, new StageChanged(View("lm", JobState.Queued))));
        s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(2, s.Single("disttrain_job_queue_length"));
        Assert.Equal(1, s.Single("disttrain_job_state", ("job_id", "j1"), ("job_name", "tiny-dp"), ("state", "queued")));
        Assert.Equal(0, s.Single("disttrain_job_state", ("job_id", "j1"), ("state", "running")));

        r.Record(new JobQueueChanged(1, 1));
        r.Record(Activity("j1", 2, new StageChanged(View("lm", JobState.Running))));
        r.Record(Activity("j1", 3, new StageProgress("lm", 0, 4, 20, 2.5, 1000)));
        s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(1, s.Single("disttrain_jobs_running"));
        Assert.Equal(1, s.Single("disttrain_job_state", ("job_id", "j1"), ("state", "running")));
        Assert.Equal(1, s.Single("disttrain_stage_state", ("job_id", "j1"), ("stage", "lm"), ("state", "running")));
        Assert.Equal(0, s.Single("disttrain_stage_state", ("job_id", "j1"), ("stage", "lm"), ("state", "queued")));
        Assert.Equal(0.25, s.Single("disttrain_stage_progress_ratio", ("job_id", "j1"), ("stage", "lm")));   // step 4 done = 5 of 20

        var final = new JobView("j1", "tiny-dp", 0, JobState.Failed, DateTimeOffset.UtcNow, [View("lm", JobState.Failed, 7)], "worker lost");
        r.Record(Activity("j1", 4, new JobError("worker lost")));
        r.Record(Activity("j1", 5, new JobFinished(final)));
        r.Record(new JobQueueChanged(1, 0));
        s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(1, s.Single("disttrain_job_state", ("job_id", "j1"), ("state", "failed")));
        Assert.Equal(0, s.Single("disttrain_job_state", ("job_id", "j1"), ("state", "running")));
        Assert.Equal(1, s.Single("disttrain_stage_state", ("job_id", "j1"), ("stage", "lm"), ("state", "failed")));
        Assert.Equal(1, s.Single("disttrain_jobs_finished_total", ("state", "failed")));
        Assert.Equal(0, s.Single("disttrain_jobs_finished_total", ("state", "succeeded")));
        Assert.Equal(0, s.Single("disttrain_jobs_running"));
    }

    [Fact]
    public async Task Only_the_newest_finished_jobs_keep_their_series()
    {
        var (r, registry) = New("coordinator", finishedJobsKept: 2);
        for (int i = 1; i <= 4; i++)
        {
            string job = $"j{i}";
            r.Record(new GenerationStarted(job, "lm", 1, ["10.0.0.2:4053/cpu"], 0));
            r.Record(Step(0, 0, job: job));
            r.Record(Activity(job, 1, new StageChanged(View("lm", JobState.Running))));
            r.Record(Activity(job, 2, new JobFinished(new JobView(job, "tiny-dp", 0, JobState.Succeeded, DateTimeOffset.UtcNow, [View("lm", JobState.Succeeded, 20)], null))));
        }
        var s = await Exposition.ScrapeAsync(registry);
        var jobs = s.Where(x => x.Labels.ContainsKey("job_id")).Select(x => x.Labels["job_id"]).Distinct().Order();
        Assert.Equal(["j3", "j4"], jobs);
        Assert.Equal(4, s.Single("disttrain_jobs_finished_total", ("state", "succeeded")));
    }

    [Fact]
    public async Task Membership_is_counted_by_role_and_status_with_every_pair_exported()
    {
        var (r, registry) = New("coordinator");
        r.RecordMember("akka.tcp://disttrain@a:1", ["coordinator"], "up");
        r.RecordMember("akka.tcp://disttrain@b:1", ["worker"], "up");
        r.RecordMember("akka.tcp://disttrain@c:1", ["worker"], "joining");
        r.RecordReachability("akka.tcp://disttrain@b:1", reachable: false);
        var s = await Exposition.ScrapeAsync(registry);
        Assert.Equal(1, s.Single("disttrain_cluster_members", ("role", "worker"), ("status", "up")));
        Assert.Equal(1, s.Single("disttrain_cluster_members", ("role", "worker"), ("status", "joining")));
        Assert.Equal(1, s.Single("disttrain_cluster_members", ("role", "coordinator"), ("status", "up")));
        Assert.Equal(0, s.Single("disttrain_cluster_members", ("role", "coordinator"), ("status", "leaving")));
        Assert.Equal(1, s.Single("disttrain_cluster_unreachable_members", ("role", "worker")));
        Assert.Equal(2 * ClusterMembership.Statuses.Length, s.Find("disttrain_cluster_members").Count);
    }
}
