using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;

namespace DistTrain.Cluster.Jobs;

/// <summary>
/// The job manager's read side: a job's events, read from the journal with Akka.Persistence.Query (the SQL read
/// journal's <c>EventsByTag</c>), not from the job manager's memory. Each record is tagged with its job
/// (<see cref="TagOf"/>); a watch replays the job's records through a <see cref="JobBook"/> of its own, which numbers the
/// events exactly as the job manager's book does, skips those up to the watcher's sequence and follows the journal live
/// until <see cref="JobFinished"/>. So any coordinator node serves watches, a watch survives a fail-over of the job
/// manager singleton, and a watcher resumes from its last sequence on any node. The journal keeps every record for this.
/// </summary>
/// <remarks>How soon a live watch sees a record is set in cluster-config/akka.hocon
/// (<c>akka.persistence.query.journal.sql.refresh-interval</c> and <c>journal-sequence-retrieval.query-delay</c>).</remarks>
public sealed class JobEventFeed
{
    private readonly SqlReadJournal _journal;
    private readonly IMaterializer _materializer;

    public JobEventFeed(ActorSystem system)
    {
        _journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        _materializer = system.Materializer(namePrefix: "job-feed");
    }

    /// <summary>
    /// The tag of a job's records: a hash of its id, so the tag has a fixed, short length whatever the job's name
    /// (records are still matched on their job id, so a collision could cost a query, never mix jobs).
    /// </summary>
    public static string TagOf(string jobId) =>
        "job-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(jobId)), 0, 8).ToLowerInvariant();

    /// <summary>
    /// Whether the journal holds the job, as far as the read journal has caught up (it may lag the write by its
    /// query delay: a job submitted a moment ago may not be visible yet).
    /// </summary>
    public async Task<bool> ContainsAsync(string jobId, TimeSpan timeout, CancellationToken ct)
    {
        var first = _journal.CurrentEventsByTag(TagOf(jobId), Offset.NoOffset())
            .Where(e => e.Event is IJobJournalEvent r && r.JobId == jobId)
            .Take(1)
            .RunWith(Sink.Seq<EventEnvelope>(), _materializer);
        return (await first.WaitAsync(timeout, ct)).Count > 0;
    }

    /// <summary>
    /// The job's events after <paramref name="afterSequence"/>, live from the journal; completes after
    /// <see cref="JobFinished"/> (at once if the watcher saw it already). A failing query ends the stream with its error.
    /// </summary>
    public async IAsyncEnumerable<JobEvent> WatchAsync(string jobId, long afterSequence, [EnumeratorCancellation] CancellationToken ct)
    {
        var pending = new Queue<JobEvent>();
        var book = new JobBook((_, e) => pending.Enqueue(e));
        var (kill, queue) = _journal.EventsByTag(TagOf(jobId), Offset.NoOffset())
            .ViaMaterialized(KillSwitches.Single<EventEnvelope>(), Keep.Right)
            .ToMaterialized(Sink.Queue<EventEnvelope>(), Keep.Both)
            .Run(_materializer);
        try
        {
            while (true)
            {
                var next = await queue.PullAsync().WaitAsync(ct);
                if (!next.HasValue) yield break;   // the query ended (the read journal shut down with its actor system)
                if (next.Value.Event is not IJobJournalEvent record || record.JobId != jobId) continue;
                book.Apply(record);
                while (pending.TryDequeue(out var e))
                {
                    if (e.Sequence > afterSequence) yield return e;
                    if (e.Body is JobFinished) yield break;
                }
            }
        }
        finally
        {
            kill.Shutdown();
        }
    }
}
