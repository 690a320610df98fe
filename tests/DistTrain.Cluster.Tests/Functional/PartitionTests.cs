using DistTrain.Api.V1;
using ApiWorker = DistTrain.Api.V1.Worker;
using JobsClient = DistTrain.Api.V1.Jobs.JobsClient;
using Grpc.Core;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// Network partitions on a real cluster (issue #12, item 6): every node a <c>disttrain node</c> process in its own network
/// namespace, cut by dropping packets in a router namespace (<see cref="NetworkNamespaces"/>). Each test checks that
/// nothing is lost (every example of every epoch trained exactly once, final parameters equal to one process within 1e-5)
/// and logs detection and recovery times (docs/reliability.md). Needs root with CAP_NET_ADMIN; skipped otherwise.
/// </summary>
[Collection("cluster")]
public sealed class PartitionTests(PartitionCluster cluster, ITestOutputHelper output) : IClassFixture<PartitionCluster>
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(4);
    /// <summary>
    /// How long the shared cluster may take to be whole again (every worker up and idle): a scenario's aftermath can leave
    /// a worker in a remnant without a coordinator, which CoordinatorWatch leaves after 60 s, plus a rejoin backoff of up to 30 s.
    /// </summary>
    private static readonly TimeSpan WholeAgain = TimeSpan.FromMinutes(3);
    /// <summary>How long a partition lasts, as in the issue.</summary>
    private static readonly TimeSpan PartitionLength = TimeSpan.FromSeconds(30);
    /// <summary>The cut lands after this step of rank 0: mid-epoch, past the step-10 checkpoint.</summary>
    private const int CutAfterStep = 14;
    // One epoch of 20 steps: the length over which the other equivalence tests hold 1e-5 (float sums in another order drift further).
    private const int Steps = 20, Examples = 240, CheckpointEvery = 10;

    private static string Stage1() => ClusterHarness.Spec(workers: 3, "ring", steps: Steps, checkpointEvery: CheckpointEvery, checksumEvery: 0, minWorkers: 2, maxRestarts: 10);

    /// <summary>The first stage, then one that starts from it and needs all three workers: only a rejoined node lets it run.</summary>
    private static string TwoStages() => Stage1().TrimEnd() + "\n" + """
          - name: next
            kind: pretrain
            objective: clm
            inputs: {init: lm}
            data: {corpus: brown, seq_len: 32, max_examples: 240}
            train: {steps: 10, batch_size: 12, lr: 3.0e-3, warmup: 2}
            distributed: {workers: {min: 3, max: 3}, aggregation: ring, checksum_every: 0}
        """;

    [RequiresNetworkNamespacesFact]
    public async Task A_worker_partitioned_for_30_s_mid_stage_is_downed_the_stage_resumes_on_the_rest_and_the_worker_rejoins_for_the_next_stage()
    {
        const int cut = 3;
        string yaml = TwoStages();
        using var reference = new TempDir();
        ClusterHarness.RunInProcess(yaml, reference.Path);
        int cutDowned = Downings(cut), coordinatorDowned = Downings(PartitionCluster.CoordinatorNode);   // the cluster is shared
        var run = await RunWithFaultAsync(yaml, () =>
        {
            cluster.Net.Isolate(cut);
            return Task.FromResult<Action>(cluster.Net.Heal);
        });

        var detected = run.Membership.FirstOrDefault(s => s.Time > run.CutAt && !s.IsUp(PartitionCluster.WorkerId(cut)));
        var removed = run.Membership.FirstOrDefault(s => s.Time > run.CutAt && s.Workers is { } w && w.All(x => x.WorkerId != PartitionCluster.WorkerId(cut)));
        var rejoined = run.Membership.FirstOrDefault(s => s.Time > run.HealAt && s.IsUp(PartitionCluster.WorkerId(cut)));
        output.WriteLine($"isolated node {cut} after step {run.MaxStepAtCut} for {PartitionLength.TotalSeconds:F0} s: unreachable after {Since(run.CutAt, detected?.Time)}, " +
            $"removed after {Since(run.CutAt, removed?.Time)}, first step of the re-formed group after {Since(run.CutAt, run.RecoveredAt)}; " +
            $"healed, registered again {Since(run.HealAt, rejoined?.Time)} later; job {Since(run.SubmittedAt, run.EndedAt)}");

        AssertSucceeded(run.Job);
        Assert.True(run.Job.Stages[0].Metrics["restarts"] >= 1, "the partition should have cost a restart");
        var records = ClusterHarness.AssertTrainedExactlyOnce(StageDirectory(run, "lm"), Steps, Examples);
        Assert.Equal(CheckpointEvery, records.Where(r => r.Generation > records.Min(x => x.Generation)).Min(r => r.Step));   // resumed from the checkpoint
        // The rejoined worker served the stage that needed all three: there are three workers, and "next" ran 10 steps on
        // three ranks (its few steps can finish between two 200 ms samples of the worker list, so that list is no evidence).
        var nextRanks = Directory.GetFiles(StageDirectory(run, "next"), "samples-rank*.jsonl");
        Assert.Equal(3, nextRanks.Length);
        Assert.All(nextRanks, f => Assert.Equal(10, File.ReadLines(f).Count()));
        Assert.Equal(PartitionCluster.Workers, Enumerable.Range(1, PartitionCluster.Workers).Count(n => run.Membership.Any(s => s.IsUp(PartitionCluster.WorkerId(n)) && s.Time > run.HealAt)));
        // The cut-off node did not go on alone: its actor system was downed and replaced, the coordinator's never.
        Assert.True(Downings(cut) > cutDowned, $"node {cut} should have been downed and restarted its actor system");
        Assert.Equal(coordinatorDowned, Downings(PartitionCluster.CoordinatorNode));
        AssertEquivalent(yaml, reference.Path, run, "lm");
        // "next" starts from lm's weights, which already differ from one process's by up to ~7e-6 (and grew to 1.1e-5 after
        // its 10 steps in one run on 2026-12-04): its reference starts from the cluster's own lm, so the bound is this stage's error.
        using var afterLm = new TempDir();
        ClusterHarness.RunInProcessAfter(yaml, afterLm.Path, "lm", StageDirectory(run, "lm"));
        AssertEquivalent(yaml, afterLm.Path, run, "next");
    }

    [RequiresNetworkNamespacesFact]
    public async Task The_coordinators_node_cut_off_from_a_minority_of_workers_loses_nothing()
    {
        const int cut = 3;   // node 3 still reaches workers 1 and 2; only the coordinator's link to it is cut, both ways
        string yaml = Stage1();
        using var reference = new TempDir();
        ClusterHarness.RunInProcess(yaml, reference.Path);
        var run = await RunWithFaultAsync(yaml, () =>
        {
            cluster.Net.Cut(PartitionCluster.CoordinatorNode, cut);
            return Task.FromResult<Action>(cluster.Net.Heal);
        });

        var detected = run.Membership.FirstOrDefault(s => s.Time > run.CutAt && !s.IsUp(PartitionCluster.WorkerId(cut)));
        // One cluster again: every worker registered with the one coordinator, up and idle.
        await cluster.WaitForWorkersAsync(Enumerable.Range(1, PartitionCluster.Workers).Select(PartitionCluster.WorkerId).ToList(), WholeAgain);
        DateTime? whole = DateTime.UtcNow;
        output.WriteLine($"cut coordinator ↔ node {cut} after step {run.MaxStepAtCut} for {PartitionLength.TotalSeconds:F0} s: {(detected is null ? "never detected" : Describe(detected))} after {Since(run.CutAt, detected?.Time)}, " +
            $"first step of the re-formed group after {Since(run.CutAt, run.RecoveredAt)}; all 3 workers up and idle {Since(run.HealAt, whole)} after healing (job ended {Since(run.HealAt, run.EndedAt)} after it); " +
            $"downed and restarted: {string.Join(", ", Enumerable.Range(0, 1 + PartitionCluster.Workers).Select(n => $"node {n} {Downings(n)}×"))}; job {Since(run.SubmittedAt, run.EndedAt)}");

        AssertSucceeded(run.Job);
        ClusterHarness.AssertTrainedExactlyOnce(StageDirectory(run, "lm"), Steps, Examples);
        AssertEquivalent(yaml, reference.Path, run, "lm");
    }

    [RequiresNetworkNamespacesFact]
    public async Task A_flapping_link_loses_nothing()
    {
        const int flapping = 2, flaps = 6;
        var down = TimeSpan.FromSeconds(3);
        string yaml = Stage1();
        using var reference = new TempDir();
        ClusterHarness.RunInProcess(yaml, reference.Path);
        int downingsBefore = Downings(flapping);
        var run = await RunWithFaultAsync(yaml, async () =>
        {
            // The link to node 2 goes down for 3 s and up for 3 s, six times: each cut shorter than the failure detector's
            // acceptable pause (6 s), but TCP's retransmission backoff stretches what the connections feel.
            for (int i = 0; i < flaps; i++)
            {
                cluster.Net.Isolate(flapping);
                await Task.Delay(down);   // the fault's duration
                cluster.Net.Heal();
                if (i < flaps - 1) await Task.Delay(down);
            }
            return () => { };
        }, holdFor: TimeSpan.Zero);

        output.WriteLine($"flapped node {flapping}'s link {flaps}× ({down.TotalSeconds:F0} s down, {down.TotalSeconds:F0} s up) from step {run.MaxStepAtCut}: " +
            $"restarts {run.Job.Stages[0].Metrics.GetValueOrDefault("restarts")}, node {flapping} downed {Downings(flapping) - downingsBefore}×, " +
            $"unreachable in {run.Membership.Count(s => s.Time > run.CutAt && s.Time < run.HealAt && !s.IsUp(PartitionCluster.WorkerId(flapping)))} of " +
            $"{run.Membership.Count(s => s.Time > run.CutAt && s.Time < run.HealAt)} membership polls; job {Since(run.SubmittedAt, run.EndedAt)}");

        AssertSucceeded(run.Job);
        ClusterHarness.AssertTrainedExactlyOnce(StageDirectory(run, "lm"), Steps, Examples);
        AssertEquivalent(yaml, reference.Path, run, "lm");
    }

    [RequiresNetworkNamespacesFact]
    public async Task A_cluster_whose_every_node_was_downed_forms_again_around_its_founder()
    {
        // Every node cut off from every other for longer than the resolver waits: each side is a minority of one, so every
        // node downs itself and starts a fresh actor system. The others rejoin only through seeds other than themselves;
        // only the founder (the coordinator's node, first seed) may form a cluster, and only once every other seed has
        // answered that it is in none (RejoinPolicy.RejoinSettings). Without a founder nobody would ever form it again.
        var all = Enumerable.Range(0, 1 + PartitionCluster.Workers).ToList();
        var workers = Enumerable.Range(1, PartitionCluster.Workers).Select(PartitionCluster.WorkerId).ToList();
        await cluster.WaitForWorkersAsync(workers, WholeAgain);
        var before = all.ToDictionary(n => n, Downings);
        var cutAt = DateTime.UtcNow;
        foreach (int node in all) cluster.Net.Isolate(node);
        try
        {
            // The fault lasts until every node has downed itself (its log says so); bounded.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (all.Any(n => Downings(n) == before[n]) && DateTime.UtcNow < deadline)
                await Task.Delay(500);   // reading other processes' logs: there is no event to wait on
        }
        finally { cluster.Net.Heal(); }
        var healAt = DateTime.UtcNow;
        Assert.All(all, n => Assert.True(Downings(n) > before[n], $"node {n} was not downed: {cluster.LogTails()}"));

        await cluster.WaitForWorkersAsync(workers, WholeAgain);
        var wholeAt = DateTime.UtcNow;
        string jobId = (await cluster.Client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = Stage1() }, deadline: DateTime.UtcNow.AddSeconds(30))).JobId;
        var job = await cluster.WaitForJobAsync(jobId, JobTimeout);
        output.WriteLine($"every node isolated: all {all.Count} downed within {(healAt - cutAt).TotalSeconds:F1} s; one cluster with all workers up and idle " +
            $"{(wholeAt - healAt).TotalSeconds:F1} s after the heal; a job then ran in {(DateTime.UtcNow - wholeAt).TotalSeconds:F1} s");
        AssertSucceeded(job);
        ClusterHarness.AssertTrainedExactlyOnce(Path.Combine(cluster.Root.Path, jobId, "lm"), Steps, Examples);
    }

    /// <summary>What the coordinator's worker list said at one moment (null: its API did not answer).</summary>
    private sealed record Snapshot(DateTime Time, IReadOnlyList<ApiWorker>? Workers)
    {
        public bool IsUp(string id) => Workers?.Any(w => w.WorkerId == id && w.Health == "up") == true;
    }

    private sealed record FaultRun(string JobId, JobReply Job, List<Snapshot> Membership, DateTime SubmittedAt, DateTime CutAt,
        DateTime HealAt, DateTime RecoveredAt, DateTime EndedAt, int MaxStepAtCut);

    /// <summary>
    /// Submits the job once all workers are idle, injects the fault after rank 0's step <see cref="CutAfterStep"/> of the
    /// first stage, holds it <paramref name="holdFor"/> (default <see cref="PartitionLength"/>), heals, and waits for the
    /// job; meanwhile it polls the coordinator's worker list and follows the job's progress stream (resuming it across
    /// the API's absences).
    /// </summary>
    private async Task<FaultRun> RunWithFaultAsync(string yaml, Func<Task<Action>> inject, TimeSpan? holdFor = null)
    {
        await cluster.WaitForWorkersAsync(Enumerable.Range(1, PartitionCluster.Workers).Select(PartitionCluster.WorkerId).ToList(), WholeAgain);
        var submittedAt = DateTime.UtcNow;
        string jobId = (await cluster.Client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = yaml }, deadline: DateTime.UtcNow.AddSeconds(30))).JobId;
        using var stop = new CancellationTokenSource();
        var membership = new List<Snapshot>();
        var progress = new List<(DateTime Time, Progress Event)>();
        var reachedCut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var poll = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var workers = await cluster.TryListWorkersAsync();
                lock (membership) membership.Add(new Snapshot(DateTime.UtcNow, workers));
                try { await Task.Delay(200, stop.Token); } catch (OperationCanceledException) { }   // sampling another process's view
            }
        });
        var watch = Task.Run(() => FollowProgressAsync(jobId, e =>
        {
            lock (progress) progress.Add((DateTime.UtcNow, e));
            if (e is { Stage: "lm", Rank: 0 } && e.Step >= CutAfterStep) reachedCut.TrySetResult();
        }, stop.Token));
        // The job stream reports a rank's progress at most once a second, so step 14's report can come only after rank 0's
        // stall there (PartitionCluster), and on a quiet machine the last 5 steps then ran out before the cut landed
        // (2026-12-04). Rank 0 also appends (and flushes) a line per step to its sample record, read here promptly.
        string samples = Path.Combine(cluster.Root.Path, jobId, "lm", "samples-rank0.jsonl");
        int stepsSeen = 0;
        var tail = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && !reachedCut.Task.IsCompleted)
            {
                stepsSeen = LinesIn(samples);
                if (stepsSeen > CutAfterStep) reachedCut.TrySetResult();
                else try { await Task.Delay(20, stop.Token); } catch (OperationCanceledException) { }   // sampling another process's file
            }
        });
        try
        {
            var first = await Task.WhenAny(reachedCut.Task, Task.Delay(JobTimeout));
            Assert.True(first == reachedCut.Task, $"job {jobId} did not reach step {CutAfterStep} within {JobTimeout}");
            int maxAtCut;
            lock (progress) maxAtCut = progress.Where(p => p.Event.Stage == "lm").Select(p => p.Event.Step).Append(stepsSeen - 1).Max();
            var cutAt = DateTime.UtcNow;
            var heal = await inject();
            var hold = holdFor ?? PartitionLength;
            if (hold > TimeSpan.Zero) await Task.Delay(hold);   // the partition's duration is the fault itself
            heal();
            var healAt = DateTime.UtcNow;
            var job = await cluster.WaitForJobAsync(jobId, JobTimeout);
            var endedAt = DateTime.UtcNow;
            // The next stage's membership matters (who served it), so sample until the job's end, then stop.
            stop.Cancel();
            await Task.WhenAll(poll, watch, tail);
            // The re-formed group's first step: a step at or before the cut's, run again after the rollback.
            DateTime recoveredAt;
            lock (progress) recoveredAt = progress.Where(p => p.Time > cutAt && p.Event.Stage == "lm" && p.Event.Step <= maxAtCut)
                .Select(p => p.Time).DefaultIfEmpty(DateTime.MaxValue).Min();
            lock (membership) return new FaultRun(jobId, job, membership.ToList(), submittedAt, cutAt, healAt, recoveredAt, endedAt, maxAtCut);
        }
        catch
        {
            stop.Cancel();
            cluster.Net.Heal();
            foreach (int node in Enumerable.Range(0, 1 + PartitionCluster.Workers))
                output.WriteLine($"--- node {node} (last lines)\n" + string.Join("\n", File.ReadLines(cluster.LogOf(node)).TakeLast(40)));
            throw;
        }
    }

    /// <summary>Lines in a file another process appends to (0 while it does not exist).</summary>
    private static int LinesIn(string path)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            int lines = 0, b;
            while ((b = f.ReadByte()) >= 0) if (b == '\n') lines++;
            return lines;
        }
        catch (FileNotFoundException) { return 0; }
        catch (DirectoryNotFoundException) { return 0; }
    }

    /// <summary>The job's progress events, resumed after the last sequence seen whenever the stream breaks.</summary>
    private async Task FollowProgressAsync(string jobId, Action<Progress> onProgress, CancellationToken ct)
    {
        long after = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var call = cluster.Client.WatchJob(new WatchJobRequest { JobId = jobId, AfterSequence = after }, cancellationToken: ct);
                await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                {
                    after = e.Sequence;
                    if (e.Progress is { } p) onProgress(p);
                    if (e.Finished is not null) return;
                }
            }
            catch (RpcException) when (!ct.IsCancellationRequested) { }
            catch (RpcException) { return; }
            catch (OperationCanceledException) { return; }
            try { await Task.Delay(500, ct); } catch (OperationCanceledException) { return; }   // the API is away; ask again
        }
    }

    private string StageDirectory(FaultRun run, string stage) => Path.Combine(cluster.Root.Path, run.JobId, stage);

    private void AssertEquivalent(string yaml, string referenceRoot, FaultRun run, params string[] stages)
    {
        foreach (var stage in stages)
        {
            double diff = ClusterHarness.MaxAbsDiff(ClusterHarness.FinalParameters(yaml, referenceRoot, "ref", stage),
                ClusterHarness.FinalParameters(yaml, cluster.Root.Path, run.JobId, stage));
            output.WriteLine($"stage {stage}: max |Δparam| vs one process = {diff:E2}");
            Assert.True(diff <= 1e-5, $"stage {stage}: max |Δ| = {diff}");
        }
    }

    private static void AssertSucceeded(JobReply job) =>
        Assert.True(job.State == State.Succeeded, $"job {job.JobId} {job.State}: {job.Error} {string.Join("; ", job.Stages.Select(s => $"{s.Name} {s.State} {s.Error}"))}");

    private int Downings(int node) =>
        File.ReadLines(cluster.LogOf(node)).Count(l => l.Contains("was downed by the cluster", StringComparison.Ordinal));

    private static string Describe(Snapshot s) => s.Workers is null ? "the job API stopped answering" : "the worker was no longer listed as up";

    private static string Since(DateTime from, DateTime? to) => to is null || to == DateTime.MaxValue ? "never" : $"{(to.Value - from).TotalSeconds:F1} s";
}
