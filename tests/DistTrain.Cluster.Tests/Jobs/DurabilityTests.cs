using DistTrain.Host;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Security;
using DistTrain.Cluster.Tests.Functional;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// Job state lives in the journal, not in the coordinator's memory: it survives a restart of the node on SQLite and on
/// a real PostgreSQL server, and a kill -9 of the coordinator mid-stage loses no job.
/// </summary>
[Collection("cluster")]
public sealed class DurabilityTests(ITestOutputHelper output)
{

    /// <param name="tls">Remoting certificates; null: a node of its own, with a throw-away CA's.</param>
    private static IHost CoordinatorNode(string runRoot, string store, IReadOnlyList<string>? seeds = null, ClusterTlsFiles? tls = null)
    {
        if (tls is null)
        {
            using var authority = LocalCertificateAuthority.Create();
            tls = authority.Issue(Path.Combine(runRoot, "cluster-tls"));
        }
        return NodeComposition.Build(new NodeSettings([Roles.Coordinator], "127.0.0.1", LoopbackPorts.Free(), seeds ?? [], [], runRoot)
            { JobStore = store, ClusterTls = tls }, quietHost: true);
    }

    /// <summary>A job with nowhere to run stays queued; restarting the node must bring it back as it was, then cancel it durably.</summary>
    private async Task A_queued_job_survives_restarts(string store, string runRoot)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        string jobId;
        IReadOnlyList<JobEvent> before;
        using (var node = CoordinatorNode(runRoot, store))
        {
            await node.StartAsync(ct);
            var jobs = node.Services.GetRequiredService<IJobService>();
            var outcome = await jobs.SubmitAsync(JobBookTests.Pipeline("durable"), quick: false, ct);
            Assert.True(outcome.Accepted, string.Join("; ", outcome.Errors));
            jobId = outcome.JobId!;
            before = await Events(jobs, jobId, ct);
            Assert.Equal(JobState.Queued, (await jobs.GetAsync(jobId, ct))!.State);
            await node.StopAsync(ct);
        }
        using (var node = CoordinatorNode(runRoot, store))
        {
            await node.StartAsync(ct);
            var jobs = node.Services.GetRequiredService<IJobService>();
            var job = await jobs.GetAsync(jobId, ct);
            Assert.NotNull(job);
            Assert.Equal(JobState.Queued, job.State);
            Assert.Equal(["pretrain", "teacher", "label", "student", "evaluate"], job.Stages.Select(s => s.Name));
            var after = await Events(jobs, jobId, ct);
            Assert.Equal(before.Select(e => e.Sequence), after.Take(before.Count).Select(e => e.Sequence));
            var (cancel, _) = await jobs.CancelAsync(jobId, ct);
            Assert.Equal(CancelOutcome.Cancelling, cancel);
            await foreach (var _ in jobs.WatchAsync(jobId, 0, ct)) { }   // ends after JobFinished
            Assert.Equal(JobState.Cancelled, (await jobs.GetAsync(jobId, ct))!.State);
            await node.StopAsync(ct);
        }
        using (var node = CoordinatorNode(runRoot, store))
        {
            await node.StartAsync(ct);
            var jobs = node.Services.GetRequiredService<IJobService>();
            var job = (await jobs.ListAsync(null, "durable", 0, ct)).Single();
            Assert.Equal(JobState.Cancelled, job.State);
            Assert.All(job.Stages, s => Assert.Equal(JobState.Cancelled, s.State));
            Assert.Equal(CancelOutcome.AlreadyEnded, (await jobs.CancelAsync(jobId, ct)).Outcome);
            await node.StopAsync(ct);
        }
    }

    /// <summary>Every event so far, without waiting for more.</summary>
    private static async Task<IReadOnlyList<JobEvent>> Events(IJobService jobs, string jobId, CancellationToken ct)
    {
        var list = new List<JobEvent>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var job = await jobs.GetAsync(jobId, ct);
        await foreach (var e in jobs.WatchAsync(jobId, 0, stop.Token))
        {
            list.Add(e);
            if (list.Count >= 5 && job!.State == JobState.Queued) break;   // a queued job has one event per stage
        }
        return list;
    }

    [Fact]
    public async Task A_queued_job_survives_restarts_on_sqlite()
    {
        using var root = new TempDir();
        await A_queued_job_survives_restarts($"sqlite:{Path.Combine(root.Path, "jobs.db")}", root.Path);
    }

    [RequiresPostgresFact]
    public async Task A_queued_job_survives_restarts_on_postgresql()
    {
        using var root = new TempDir();
        await using var database = await PostgresDatabase.CreateAsync();
        await A_queued_job_survives_restarts($"postgresql:{database.ConnectionString}", root.Path);
    }

    [Fact]
    public async Task Killing_the_coordinator_mid_stage_loses_no_job_and_the_stage_resumes_from_its_checkpoint()
    {
        // 40 steps, checkpoints every 10, dropout 0. The second job is the same spec under another name: it runs
        // uninterrupted on the same two workers, so the resumed job must end bit for bit where it does.
        string yaml = ClusterHarness.Spec(workers: 2, "ring", steps: 40, checkpointEvery: 10, checksumEvery: 0);
        string second = yaml.Replace("name: tiny-dp", "name: tiny-dp-2");
        using var reference = new TempDir();
        using var root = new TempDir();
        ClusterHarness.RunInProcess(yaml, reference.Path);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var ct = timeout.Token;

        string store = $"sqlite:{Path.Combine(root.Path, "jobs.db")}";
        int seedPort = LoopbackPorts.Free();
        string seed = $"akka.ssl.tcp://{NodeSettings.SystemName}@127.0.0.1:{seedPort}";
        using var authority = LocalCertificateAuthority.Create();
        var exe = ClusterHarness.Disttrain();
        using var processes = new ChildProcesses();
        string logs = Path.Combine(root.Path, "logs");
        // The first coordinator is a process of its own (so it can be killed) and the oldest node: it hosts both singletons.
        var coordinator = exe.StartInfo(["node", "--roles", Roles.Coordinator, "--host", "127.0.0.1", "--port", seedPort.ToString(),
            "--run-root", root.Path, "--job-store", store, "--grpc-port", "0", "--metrics-port", "0"]);
        foreach (var (k, v) in authority.Issue(Path.Combine(root.Path, "tls", "coordinator")).Environment()) coordinator.Environment[k] = v;
        processes.Start(coordinator, "coordinator", Path.Combine(logs, "coordinator.log"));
        for (int i = 0; i < 2; i++)
        {
            var psi = exe.StartInfo(["node", "--roles", Roles.Worker, "--host", "127.0.0.1", "--port", LoopbackPorts.Free().ToString(), "--seeds", seed,
                "--devices", "cpu", "--run-root", root.Path, "--grpc-port", "0", "--metrics-port", "0"]);
            psi.Environment[EnvironmentVariables.TorchThreads] = "1";
            foreach (var (k, v) in authority.Issue(Path.Combine(root.Path, "tls", $"worker-{i}")).Environment()) psi.Environment[k] = v;
            // Tiny steps take milliseconds: a stall after step 12 holds the stage open, past its checkpoint of step 10, long
            // enough to kill mid-stage. (It stalls again after the resume; that costs time, not correctness.)
            psi.Environment[Training.Engine.FaultInjection.Variable] = "straggle:rank=0:step=12:seconds=10";
            processes.Start(psi, $"worker-{i}", Path.Combine(logs, $"worker-{i}.log"));
        }
        // This process is the second coordinator-role node: the singletons move here when the first dies.
        using var standby = CoordinatorNode(root.Path, store, [seed], authority.Issue(Path.Combine(root.Path, "tls", "standby")));
        await standby.StartAsync(ct);
        var jobs = standby.Services.GetRequiredService<IJobService>();
        await WaitForWorkers(jobs, 2, processes, ct);

        var first = await jobs.SubmitAsync(yaml, false, ct);
        var queued = await jobs.SubmitAsync(second, false, ct);   // waits: the first holds both workers
        Assert.True(first.Accepted && queued.Accepted);

        // Kill as soon as the checkpoint of step 10 is recorded: the stall after step 12 holds the stage mid-way, with a
        // checkpoint to resume from. (Progress events are thinned to one a second and may come only after the stall.)
        bool killed = false;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan killedAt = default, requeuedAt = default;
        var events = new List<JobEvent>();
        await foreach (var e in jobs.WatchAsync(first.JobId!, 0, ct))
        {
            events.Add(e);
            if (!killed && e.Body is StageCheckpointSaved c)
            {
                processes.Kill(0);   // SIGKILL: no goodbye, no journal flush beyond what was already committed
                killed = true;
                killedAt = clock.Elapsed;
                output.WriteLine($"killed the coordinator once its checkpoint of step {c.Step} was recorded");
            }
            if (killed && requeuedAt == default && e.Body is JobError { Message: var m } && m.Contains("coordinator restarted")) requeuedAt = clock.Elapsed;
        }
        output.WriteLine($"the standby node recovered the job {(requeuedAt - killedAt).TotalSeconds:F1} s after the kill");
        Assert.True(killed, "the job ended before the coordinator could be killed");
        var resumed = events.Select(e => e.Body).OfType<JobError>().Select(e => e.Message).FirstOrDefault(m => m.Contains("coordinator restarted"));
        Assert.True(resumed is not null, "no requeue after the kill; events: " + string.Join(" | ", events.Select(e => $"{e.Sequence} {e.Body}"))
            + $"; coordinator log: {string.Join(" / ", File.ReadLines(Path.Combine(logs, "coordinator.log")).TakeLast(15))}");
        output.WriteLine(resumed);
        Assert.Contains("resuming from its checkpoint of step", resumed);

        var done = await jobs.GetAsync(first.JobId!, ct);
        Assert.True(done!.State == JobState.Succeeded, $"first job {done.State}: {done.Error} (logs: {logs})");
        await foreach (var _ in jobs.WatchAsync(queued.JobId!, 0, ct)) { }
        var other = await jobs.GetAsync(queued.JobId!, ct);
        Assert.True(other!.State == JobState.Succeeded, $"queued job {other.State}: {other.Error} (logs: {logs})");

        var resumedParams = ClusterHarness.FinalParameters(yaml, root.Path, first.JobId!);
        double vsUninterrupted = ClusterHarness.MaxAbsDiff(ClusterHarness.FinalParameters(second, root.Path, queued.JobId!), resumedParams);
        double vsSingleProcess = ClusterHarness.MaxAbsDiff(ClusterHarness.FinalParameters(yaml, reference.Path, "ref"), resumedParams);
        output.WriteLine($"after the kill and resume, max |Δparam| after 40 steps: {vsUninterrupted:E2} vs the same job uninterrupted on the cluster, {vsSingleProcess:E2} vs one process");
        Assert.Equal(0.0, vsUninterrupted);
        Assert.True(vsSingleProcess <= 1e-4, $"max |Δ| vs one process = {vsSingleProcess}");
        await standby.StopAsync(CancellationToken.None);
    }

    private static Task WaitForWorkers(IJobService jobs, int count, ChildProcesses processes, CancellationToken ct) =>
        WaitFor(async () =>
        {
            try { return (await jobs.WorkersAsync(ct)).Count >= count; }
            catch (Akka.Actor.AskTimeoutException) { return false; }
        }, $"{count} workers to register", processes, ct);

    /// <summary>Polls what other processes do (there is no event to wait on), failing fast when one of them exits.</summary>
    private static async Task WaitFor(Func<Task<bool>> condition, string what, ChildProcesses processes, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            var exited = processes.Exited().ToList();
            if (exited.Count > 0) throw new InvalidOperationException($"a node process exited while waiting for {what}: " + string.Join("; ", exited));
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"no {what} within 120 s");
    }
}

/// <summary>Runs only where a PostgreSQL server is configured (.ci/run starts one and sets DISTTRAIN_TEST_POSTGRES).</summary>
public sealed class RequiresPostgresFactAttribute : FactAttribute
{
    public const string Variable = "DISTTRAIN_TEST_POSTGRES";

    public RequiresPostgresFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)))
            Skip = $"no PostgreSQL server: set {Variable} to an admin connection string (.ci/run installs and starts one)";
    }
}

/// <summary>A throw-away database on the configured server, dropped at the end.</summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    private readonly string _admin;
    private readonly string _name;

    private PostgresDatabase(string admin, string name, string connectionString) => (_admin, _name, ConnectionString) = (admin, name, connectionString);

    public string ConnectionString { get; }

    public static async Task<PostgresDatabase> CreateAsync()
    {
        string admin = Environment.GetEnvironmentVariable(RequiresPostgresFactAttribute.Variable)!;
        string name = "disttrain_test_" + Guid.NewGuid().ToString("N")[..12];
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            await cmd.ExecuteNonQueryAsync();
        }
        var b = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = false };
        return new PostgresDatabase(admin, name, b.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        await using var c = new NpgsqlConnection(_admin);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", c);
        await cmd.ExecuteNonQueryAsync();
    }
}
