using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Hosting;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;
using DistTrain.Training.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// The job manager on a real journal (SQLite, and the PostgreSQL server CI starts), snapshotting every 4 records:
/// recovering from the newest snapshot and the records after it gives the jobs that the whole journal gives; a snapshot
/// this build cannot read makes it rebuild from the journal and lose no job; watches, served from the journal by the
/// read side, resume after any sequence on a restarted node.
/// </summary>
[Collection("cluster")]
public sealed class SnapshotRecoveryTests
{
    private const int SnapshotEvery = 4;
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>A node with the job manager on <paramref name="store"/> (the coordinator is dead letters: the test plays it), or without one.</summary>
    private static IHost JobsNode(JobStore store, string runRoot, bool jobManager = true) => new HostBuilder()
        .ConfigureLogging(l => l.ClearProviders())
        .ConfigureServices(services => services.AddAkka("jobs-test", b =>
        {
            b.AddHocon(ConfigurationFactory.ParseString($"""
                    akka.loglevel = WARNING
                    {JobManagerActor.SnapshotEverySetting} = {SnapshotEvery}
                    akka.persistence.query.journal.sql.refresh-interval = 100ms
                    akka.persistence.query.journal.sql.journal-sequence-retrieval.query-delay = 100ms
                    """), HoconAddMode.Prepend)
                .WithSqlPersistence(store.ConnectionString, store.Provider, autoInitialize: true)
                .WithCustomSerializer(JobJournalSerializer.Id, JobJournalSerializer.Bindings, system => new JobJournalSerializer(system));
            if (jobManager)
                b.WithActors((system, registry) => registry.Register<JobManagerProxyKey>(
                    system.ActorOf(JobManagerActor.Props(system.DeadLetters, new InferenceRunner(), runRoot, null), "jobs")));
        }))
        .Build();

    private static (ActorSystem System, IActorRef Jobs, IJobService Service) Parts(IHost node)
    {
        var system = node.Services.GetRequiredService<ActorSystem>();
        var registry = node.Services.GetRequiredService<ActorRegistry>();
        return (system, registry.Get<JobManagerProxyKey>(), new ActorJobService(registry, new JobEventFeed(system), TimeSpan.FromSeconds(20)));
    }

    private static async Task<List<JobEvent>> WatchToEnd(IJobService jobs, string jobId, long after, CancellationToken ct)
    {
        var list = new List<JobEvent>();
        await foreach (var e in jobs.WatchAsync(jobId, after, ct)) list.Add(e);
        return list;
    }

    /// <summary>Every record in the journal, through the read journal.</summary>
    private static async Task<IReadOnlyList<IJobJournalEvent>> Journal(ActorSystem system, CancellationToken ct) =>
        (await PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier)
            .CurrentEventsByPersistenceId(JobManagerActor.PersistenceIdValue, 0, long.MaxValue)
            .RunWith(Sink.Seq<EventEnvelope>(), system.Materializer()).WaitAsync(ct))
        .Select(e => (IJobJournalEvent)e.Event).ToList();

    private static async Task<SelectedSnapshot?> NewestSnapshot(ActorSystem system, CancellationToken ct) =>
        (await Persistence.Instance.Apply(system).SnapshotStoreFor(null).Ask<LoadSnapshotResult>(
            new LoadSnapshot(JobManagerActor.PersistenceIdValue, SnapshotSelectionCriteria.Latest, long.MaxValue), TimeSpan.FromSeconds(20), ct)).Snapshot;

    /// <summary>The job manager's answer equals the book that replaying every record of the journal gives.</summary>
    private static async Task AssertMatchesTheWholeJournal(ActorSystem system, IJobService jobs, CancellationToken ct)
    {
        var served = await jobs.ListAsync(null, null, 0, ct);
        var replayed = new JobBook();
        foreach (var r in await Journal(system, ct)) replayed.Apply(r);
        Assert.Equal(JsonSerializer.Serialize(replayed.Jobs.OrderByDescending(j => j.Order).Select(j => j.View()), Json), JsonSerializer.Serialize(served, Json));
    }

    /// <summary>Polls the job manager until <paramref name="done"/> holds; bounded by <paramref name="ct"/>.</summary>
    private static async Task Until(IJobService jobs, Func<IReadOnlyList<JobView>, bool> done, CancellationToken ct)
    {
        while (!done(await jobs.ListAsync(null, null, 0, ct))) await Task.Delay(50, ct);
    }

    private static async Task Recovery_from_a_snapshot_and_its_tail_equals_recovery_from_the_whole_journal(string setting, string runRoot)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var store = JobStore.Parse(setting, runRoot);
        string j1, j2;
        long highest;
        List<JobEvent> j2Events;
        using (var node = JobsNode(store, runRoot))
        {
            await node.StartAsync(ct);
            var (system, manager, jobs) = Parts(node);
            j1 = (await jobs.SubmitAsync(JobBookTests.Pipeline("snap-a", priority: 1), quick: false, ct)).JobId!;
            j2 = (await jobs.SubmitAsync(JobBookTests.Pipeline("snap-b"), quick: false, ct)).JobId!;
            await Until(jobs, v => v.All(j => j.Stages[0].State == JobState.Queued), ct);
            // The test plays the coordinator: j1's pretrain forms a group, steps, checkpoints and loses a worker; j2 is
            // cancelled and its stage stops.
            int generation = JobScheduler.FirstGenerationOf(1);
            manager.Tell(new GenerationStarted(j1, "pretrain", generation, ["w0", "w1"], 0));
            foreach (int rank in new[] { 0, 1 })
                foreach (int step in new[] { 0, 3 })   // the first and the last step are always recorded
                    manager.Tell(new StepCompleted(j1, "pretrain", generation, rank, step, 5.0 - step, 1, 1e-3, 256, 0.01, 0, 0, null));
            manager.Tell(new CheckpointSaved(j1, "pretrain", generation, 0, 2, "/ck/2"));
            manager.Tell(new GenerationStarted(j1, "pretrain", generation + 1, ["w0"], 1));
            Assert.Equal(CancelOutcome.Cancelling, (await jobs.CancelAsync(j2, ct)).Outcome);
            manager.Tell(new StageFinished(j2, "pretrain", false, "stopped on request", null, 0, Stopped: true));
            // The read side follows j2 live from the journal to its end.
            j2Events = await WatchToEnd(jobs, j2, 0, ct);
            Assert.Equal(JobState.Cancelled, Assert.IsType<JobFinished>(j2Events[^1].Body).Job.State);
            await Until(jobs, v => v.Single(j => j.JobId == j1).Stages[0].Step == 4, ct);
            highest = (await Journal(system, ct)).Count;
            if (highest % SnapshotEvery == 0)   // leave records after the newest snapshot, so recovery reads a tail
            {
                manager.Tell(new ShardFailed(j1, "pretrain", 0, "a record for the tail"));
                await Until(jobs, _ => Journal(system, ct).Result.Count > highest, ct);
                highest++;
            }
            var snapshot = await NewestSnapshot(system, ct);
            Assert.NotNull(snapshot);
            Assert.Equal(highest / SnapshotEvery * SnapshotEvery, snapshot.Metadata.SequenceNr);
            Assert.IsType<JobBookSnapshot>(snapshot.Snapshot);
            await node.StopAsync(ct);
        }

        // Recovery: the newest snapshot plus the records after it. The stage that was running is queued again.
        using (var node = JobsNode(store, runRoot))
        {
            await node.StartAsync(ct);
            var (system, _, jobs) = Parts(node);
            await Until(jobs, v => v.Single(j => j.JobId == j1).Stages[0].State == JobState.Queued, ct);
            await AssertMatchesTheWholeJournal(system, jobs, ct);
            // A watcher resumes after any sequence it saw, here on a node that did not serve it before.
            Assert.Equal(JsonSerializer.Serialize(j2Events, Json), JsonSerializer.Serialize(await WatchToEnd(jobs, j2, 0, ct), Json));
            Assert.Equal(JsonSerializer.Serialize(j2Events.Skip(3), Json), JsonSerializer.Serialize(await WatchToEnd(jobs, j2, 3, ct), Json));
            Assert.Empty(await WatchToEnd(jobs, j2, j2Events[^1].Sequence, ct));
            await Assert.ThrowsAsync<KeyNotFoundException>(() => WatchToEnd(jobs, "no-such-job", 0, ct));
            await node.StopAsync(ct);
        }

        // A snapshot this build cannot read (another format) at the newest record: the job manager rebuilds from the journal.
        using (var node = JobsNode(store, runRoot, jobManager: false))
        {
            await node.StartAsync(ct);
            var system = node.Services.GetRequiredService<ActorSystem>();
            highest = (await Journal(system, ct)).Count;
            var saved = await Persistence.Instance.Apply(system).SnapshotStoreFor(null).Ask<object>(new SaveSnapshot(
                new SnapshotMetadata(JobManagerActor.PersistenceIdValue, highest, DateTime.UtcNow), new JobBookSnapshot(99, 0, [])), TimeSpan.FromSeconds(20), ct);
            Assert.IsType<SaveSnapshotSuccess>(saved);
            Assert.IsType<UnreadableSnapshot>((await NewestSnapshot(system, ct))!.Snapshot);
            await node.StopAsync(ct);
        }
        using (var node = JobsNode(store, runRoot))
        {
            await node.StartAsync(ct);
            var (system, _, jobs) = Parts(node);
            await Until(jobs, v => v.Count == 2, ct);
            await AssertMatchesTheWholeJournal(system, jobs, ct);
            Assert.Equal(JsonSerializer.Serialize(j2Events, Json), JsonSerializer.Serialize(await WatchToEnd(jobs, j2, 0, ct), Json));
            // The rebuilt book is saved as the newest snapshot, in place of the unreadable one.
            while ((await NewestSnapshot(system, ct))!.Snapshot is not JobBookSnapshot) await Task.Delay(50, ct);
            await node.StopAsync(ct);
        }
    }

    [Fact]
    public async Task Recovery_from_a_snapshot_and_its_tail_equals_recovery_from_the_whole_journal_on_sqlite()
    {
        using var root = new TempDir();
        await Recovery_from_a_snapshot_and_its_tail_equals_recovery_from_the_whole_journal($"sqlite:{Path.Combine(root.Path, "jobs.db")}", root.Path);
    }

    [RequiresPostgresFact]
    public async Task Recovery_from_a_snapshot_and_its_tail_equals_recovery_from_the_whole_journal_on_postgresql()
    {
        using var root = new TempDir();
        await using var database = await PostgresDatabase.CreateAsync();
        await Recovery_from_a_snapshot_and_its_tail_equals_recovery_from_the_whole_journal($"postgresql:{database.ConnectionString}", root.Path);
    }
}
