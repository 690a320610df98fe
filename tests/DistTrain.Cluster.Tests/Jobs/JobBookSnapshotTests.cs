using System.Text.Json;
using DistTrain.Cluster.Jobs;

namespace DistTrain.Cluster.Tests.Jobs;

/// <summary>
/// Snapshots of the job book, without actors or a database: restoring a snapshot and applying the records after it gives
/// the book (and the numbered events) that applying every record gives, at every point of a journal; a snapshot that
/// does not fit is refused, never half-read.
/// </summary>
public sealed class JobBookSnapshotTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);
    private static readonly IReadOnlyDictionary<string, double> NoMetrics = new Dictionary<string, double>();

    /// <summary>A journal of two jobs touching every kind of record: one runs, restarts, is requeued and fails; one is cancelled.</summary>
    public static IJobJournalEvent[] Journal()
    {
        DateTimeOffset At(int s) => T0.AddSeconds(s);
        return
        [
            new JobSubmitted("j1", "tiny", 1, JobBookTests.Pipeline("tiny", 1), false, At(0)),
            new JobSubmitted("j2", "other", 0, JobBookTests.Pipeline("other"), true, At(1)),
            new StageDispatched("j1", "pretrain", 1, At(2)),
            new StageStarted("j1", "pretrain", ["w0", "w1"], At(3)),
            new StageProgressed("j1", "pretrain", 0, 0, 4, 6.5, 1000, At(4)),
            new StageProgressed("j1", "pretrain", 1, 0, 4, double.NaN, 990, At(4)),
            new StageCheckpointed("j1", "pretrain", 2, "/ck/2", At(5)),
            new StageRestarted("j1", "pretrain", 1, "group re-formed", At(6)),
            new JobNoted("j1", "worker lost", At(6)),
            new StageRequeued("j1", "pretrain", "the coordinator restarted", At(7)),
            new JobCancelRequested("j2", At(8)),
            new StageEnded("j2", "pretrain", JobState.Cancelled, "the job was cancelled", NoMetrics, At(8)),
            new JobEnded("j2", JobState.Cancelled, "cancelled by request", At(9)),
            new StageDispatched("j1", "pretrain", 2, At(10)),
            new StageStarted("j1", "pretrain", ["w0"], At(11)),
            new StageProgressed("j1", "pretrain", 0, 3, 4, 2.25, 1100, At(12)),
            new StageEnded("j1", "pretrain", JobState.Succeeded, null, new Dictionary<string, double> { ["perplexity"] = 9.5, ["restarts"] = 1 }, At(13)),
            new StageDispatched("j1", "teacher", 1, At(14)),
            new StageStarted("j1", "teacher", ["w0"], At(15)),
            new StageEnded("j1", "teacher", JobState.Failed, "loss was NaN", NoMetrics, At(16)),
            new JobEnded("j1", JobState.Failed, "stage teacher failed: loss was NaN", At(17)),
        ];
    }

    private static string Json(JobBookSnapshot s) => JsonSerializer.Serialize(s, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });

    [Fact]
    public void A_snapshot_and_the_records_after_it_give_the_book_and_events_of_every_record()
    {
        var serializer = new JobJournalSerializer(null!);
        var journal = Journal();
        var all = new List<(string, JobEvent)>();
        var full = new JobBook((j, e) => all.Add((j.JobId, e)));
        foreach (var r in journal) full.Apply(r);
        for (int cut = 0; cut <= journal.Length; cut++)
        {
            var head = new JobBook();
            foreach (var r in journal.Take(cut)) head.Apply(r);
            // Through the serializer, as the snapshot store holds it.
            var stored = head.Snapshot();
            var read = Assert.IsType<JobBookSnapshot>(serializer.FromBinary(serializer.ToBinary(stored), serializer.Manifest(stored)));
            var tail = new List<(string, JobEvent)>();
            var restored = JobBook.Restore(read, (j, e) => tail.Add((j.JobId, e)));
            foreach (var r in journal.Skip(cut)) restored.Apply(r);

            Assert.Equal(Json(full.Snapshot()), Json(restored.Snapshot()));
            Assert.Equal(full.Live().Select(j => j.JobId), restored.Live().Select(j => j.JobId));
            // The events after the cut are numbered on from the snapshot, exactly as without it.
            var expected = all.Skip(all.Count - tail.Count).ToList();
            Assert.Equal(expected.Select(e => (e.Item1, e.Item2.Sequence, e.Item2.Body.GetType())), tail.Select(e => (e.Item1, e.Item2.Sequence, e.Item2.Body.GetType())));
        }
        Assert.Equal(2, full.Jobs.Count());
        Assert.All(full.Jobs, j => Assert.True(j.EventCount > 5));
    }

    [Fact]
    public void A_snapshot_that_cannot_be_read_is_reported_as_such_and_never_half_read()
    {
        var serializer = new JobJournalSerializer(null!);
        var book = new JobBook();
        foreach (var r in Journal().Take(4)) book.Apply(r);
        var good = book.Snapshot();

        Assert.Contains("not valid JSON", Assert.IsType<UnreadableSnapshot>(serializer.FromBinary("{\"Format\":1,\"Jobs\":[{"u8.ToArray(), nameof(JobBookSnapshot))).Reason);
        Assert.Contains("format 2", Assert.IsType<UnreadableSnapshot>(serializer.FromBinary(serializer.ToBinary(good with { Format = 2 }), nameof(JobBookSnapshot))).Reason);
        Assert.Contains("no format", Assert.IsType<UnreadableSnapshot>(serializer.FromBinary("{\"Jobs\":[]}"u8.ToArray(), nameof(JobBookSnapshot))).Reason);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "JobBookSnapshotV9"));

        // Readable JSON that does not fit the spec it carries is refused by the book, not applied in part.
        var job = good.Jobs[0];
        var fewerStages = good with { Jobs = [job with { Stages = job.Stages.Take(2).ToList() }, good.Jobs[1]] };
        Assert.Contains("stages", Assert.Throws<InvalidDataException>(() => JobBook.Restore(fewerStages)).Message);
        var badSpec = good with { Jobs = [job with { Submitted = job.Submitted with { SpecYaml = "name: [" } }] };
        Assert.Contains("invalid spec", Assert.Throws<InvalidDataException>(() => JobBook.Restore(badSpec)).Message);
        var twice = good with { Jobs = [job, job] };
        Assert.Contains("twice", Assert.Throws<InvalidDataException>(() => JobBook.Restore(twice)).Message);
        Assert.Contains("format", Assert.Throws<InvalidDataException>(() => JobBook.Restore(good with { Format = 0 })).Message);
    }
}
