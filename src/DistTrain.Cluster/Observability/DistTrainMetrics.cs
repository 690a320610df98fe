using Prometheus;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// Every metric DistTrain exports, defined once on one node's registry (docs/observability.md lists them).
/// Names follow Prometheus conventions (base units, <c>_seconds</c>, <c>_bytes</c>, <c>_total</c>); labels stay bounded:
/// <c>job_id</c>, <c>stage</c>, <c>rank</c>, <c>node</c> and small closed sets, never a step or an example.
/// The job label is <c>job_id</c> because Prometheus reserves <c>job</c> for the scrape job.
/// </summary>
public sealed class DistTrainMetrics
{
    public const string Job = "job_id", Stage = "stage", Rank = "rank", Node = "node";
    public static readonly string[] RankLabels = [Job, Stage, Rank, Node];
    public static readonly string[] StageLabels = [Job, Stage];

    public DistTrainMetrics(CollectorRegistry registry, string node, IReadOnlyList<string> roles)
    {
        Registry = registry;
        var f = Metrics.WithCustomRegistry(registry);
        f.CreateGauge("disttrain_node_info", "Always 1: this node's name (host:port of its cluster address) and roles.", "node", "roles")
            .WithLabels(node, string.Join(",", roles)).Set(1);
        Process = new ProcessMetrics(f, registry);
        if (roles.Contains(Hosting.Roles.Worker)) Ranks = new RankMetrics(f);
        if (roles.Contains(Hosting.Roles.Coordinator)) Cluster = new CoordinatorMetrics(f);
    }

    public CollectorRegistry Registry { get; }
    public ProcessMetrics Process { get; }
    /// <summary>Figures of the ranks this node's workers run; null on a node without the worker role.</summary>
    public RankMetrics? Ranks { get; }
    /// <summary>Cross-rank, job and cluster figures; null on a node without the coordinator role.</summary>
    public CoordinatorMetrics? Cluster { get; }
}

/// <summary>Per-rank figures, exported by the worker node that computed them (labels job_id, stage, rank, node).</summary>
public sealed class RankMetrics(MetricFactory f)
{
    private static HistogramConfiguration Buckets(double start, double factor, int count) =>
        new() { LabelNames = DistTrainMetrics.RankLabels, Buckets = Histogram.ExponentialBuckets(start, factor, count) };

    public readonly Histogram StepSeconds = f.CreateHistogram("disttrain_step_seconds",
        "Wall time of one training step on this rank: data, forward/backward, all-reduce, periodic evaluation.", Buckets(0.01, 2, 14));
    public readonly Counter Steps = f.CreateCounter("disttrain_steps_total", "Training steps this rank completed.", DistTrainMetrics.RankLabels);
    public readonly Gauge TokensPerSecond = f.CreateGauge("disttrain_tokens_per_second",
        "Target tokens of the last global batch divided by this rank's wall time for the step.", DistTrainMetrics.RankLabels);
    public readonly Gauge Loss = f.CreateGauge("disttrain_loss", "Training loss of the last step (mean over the global batch; NaN after a non-finite step).", DistTrainMetrics.RankLabels);
    public readonly Gauge GradientNorm = f.CreateGauge("disttrain_gradient_norm", "Global gradient L2 norm of the last step, before clipping.", DistTrainMetrics.RankLabels);
    public readonly Gauge LearningRate = f.CreateGauge("disttrain_learning_rate", "Learning rate of the last step.", DistTrainMetrics.RankLabels);
    public readonly Histogram DataWaitSeconds = f.CreateHistogram("disttrain_data_wait_seconds",
        "Time a step spent sampling and collating its batch before compute.", Buckets(0.0005, 4, 10));
    public readonly Histogram AllReduceSeconds = f.CreateHistogram("disttrain_allreduce_seconds",
        "Time a step spent in gradient and count all-reduces, including waiting for slower ranks.", Buckets(0.0005, 2, 18));
    public readonly Histogram AllReduceHiddenSeconds = f.CreateHistogram("disttrain_allreduce_hidden_seconds",
        "Time gradient all-reduces ran behind backward (overlapped buckets), which the step did not wait for.", Buckets(0.0005, 2, 18));
    public readonly Counter AllReduceBytes = f.CreateCounter("disttrain_allreduce_bytes_total",
        "Bytes of the buffers this rank all-reduced, in their wire format (a ring moves 2(N-1)/N of this per rank).", DistTrainMetrics.RankLabels);
    public readonly Histogram CheckpointSeconds = f.CreateHistogram("disttrain_checkpoint_seconds",
        "Time to write one checkpoint (rank 0 writes).", Buckets(0.01, 2, 14));
    public readonly Counter NonFiniteSteps = f.CreateCounter("disttrain_nonfinite_steps_total",
        "Steps whose loss or gradient was NaN or infinite (the update was skipped and the rank failed).", DistTrainMetrics.RankLabels);

    /// <summary>Every per-rank collector, for removing one rank's series together.</summary>
    public IEnumerable<Collector> All => [StepSeconds, Steps, TokensPerSecond, Loss, GradientNorm, LearningRate, DataWaitSeconds, AllReduceSeconds, AllReduceHiddenSeconds, AllReduceBytes, CheckpointSeconds, NonFiniteSteps];
}

/// <summary>Figures only the coordinator node has: stragglers across ranks, groups, jobs, the queue, cluster membership.</summary>
public sealed class CoordinatorMetrics(MetricFactory f)
{
    public readonly Gauge StragglerGap = f.CreateGauge("disttrain_straggler_gap_seconds",
        "This rank's busy time in the last complete step (step minus all-reduce) minus the median across ranks; positive = slower.", DistTrainMetrics.RankLabels);
    public readonly Gauge BusyMedian = f.CreateGauge("disttrain_step_busy_median_seconds",
        "Median across ranks of busy time (step minus all-reduce) in the last complete step.", DistTrainMetrics.StageLabels);
    public readonly Counter Tokens = f.CreateCounter("disttrain_tokens_total", "Target tokens trained, counted once per global step.", DistTrainMetrics.StageLabels);
    public readonly Gauge WorldSize = f.CreateGauge("disttrain_stage_world_size", "Ranks in the stage's current process group.", DistTrainMetrics.StageLabels);
    public readonly Gauge Generation = f.CreateGauge("disttrain_stage_generation", "Generation number of the stage's current process group; it increases whenever the group is formed again.", DistTrainMetrics.StageLabels);
    public readonly Counter WorkerRestarts = f.CreateCounter("disttrain_worker_restarts_total",
        "Group restarts of the stage after a lost or failed worker (each rolls back to the last checkpoint).", DistTrainMetrics.StageLabels);
    public readonly Counter WorkersLost = f.CreateCounter("disttrain_workers_lost_total",
        "Registered workers the coordinator lost (actor terminated, node unreachable or removed).");
    public readonly Gauge Members = f.CreateGauge("disttrain_cluster_members", "Cluster members by role and status.", "role", "status");
    public readonly Gauge Unreachable = f.CreateGauge("disttrain_cluster_unreachable_members", "Cluster members the failure detector marks unreachable, by role.", "role");
    public readonly Gauge JobState = f.CreateGauge("disttrain_job_state", "1 for the job's current state, 0 for the others.", DistTrainMetrics.Job, "job_name", "state");
    public readonly Gauge StageState = f.CreateGauge("disttrain_stage_state", "1 for the stage's current state, 0 for the others.", DistTrainMetrics.Job, DistTrainMetrics.Stage, "state");
    public readonly Gauge StageProgress = f.CreateGauge("disttrain_stage_progress_ratio", "Completed steps over total steps of the stage.", DistTrainMetrics.StageLabels);
    public readonly Counter JobsFinished = f.CreateCounter("disttrain_jobs_finished_total", "Jobs that reached a final state, by state.", "state");
    public readonly Gauge QueueLength = f.CreateGauge("disttrain_job_queue_length", "Jobs waiting in the coordinator's queue.");
    public readonly Gauge JobsRunning = f.CreateGauge("disttrain_jobs_running", "Jobs the coordinator is running.");

    /// <summary>Every collector labelled by job_id (first label), for dropping the series of an old job together.</summary>
    public IEnumerable<Collector> ByJob => [StragglerGap, BusyMedian, Tokens, WorldSize, Generation, WorkerRestarts, JobState, StageState, StageProgress];
}
