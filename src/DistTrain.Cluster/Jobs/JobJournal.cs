using System.Runtime.Serialization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace DistTrain.Cluster.Jobs;

/// <summary>
/// What the job manager persists: one record per fact, in order. State is rebuilt by replaying them through
/// <see cref="JobBook.Apply"/>, so a coordinator that died mid-stage comes back with every job exactly as it was.
/// </summary>
public interface IJobJournalEvent
{
    string JobId { get; }
    DateTimeOffset At { get; }
}

public sealed record JobSubmitted(string JobId, string Name, int Priority, string SpecYaml, bool Quick, DateTimeOffset At) : IJobJournalEvent;

/// <summary>A stage was handed to the coordinator (training) or started on this node (inference); <paramref name="Attempt"/> counts from 1.</summary>
public sealed record StageDispatched(string JobId, string Stage, int Attempt, DateTimeOffset At) : IJobJournalEvent;

/// <summary>The stage got its workers (or, for inference, began) and is running.</summary>
public sealed record StageStarted(string JobId, string Stage, IReadOnlyList<string> Workers, DateTimeOffset At) : IJobJournalEvent;

/// <summary>Training progress of one rank (throttled: not every step is recorded).</summary>
public sealed record StageProgressed(string JobId, string Stage, int Rank, int Step, int TotalSteps, double Loss, double TokensPerSecond, DateTimeOffset At) : IJobJournalEvent;

/// <summary>A checkpoint on shared storage that a re-dispatched stage resumes from.</summary>
public sealed record StageCheckpointed(string JobId, string Stage, int Step, string Path, DateTimeOffset At) : IJobJournalEvent;

/// <summary>A stage reached a final state.</summary>
public sealed record StageEnded(string JobId, string Stage, JobState State, string? Error, IReadOnlyDictionary<string, double> Metrics, DateTimeOffset At) : IJobJournalEvent;

/// <summary>
/// A running stage lost a worker and its group re-formed; <paramref name="Restarts"/> is what the stage has used of its
/// restart budget so far, over every attempt, so a stage re-dispatched after a coordinator fail-over goes on counting.
/// </summary>
public sealed record StageRestarted(string JobId, string Stage, int Restarts, string Message, DateTimeOffset At) : IJobJournalEvent;

/// <summary>A running stage lost its run (the coordinator restarted) and waits for workers again.</summary>
public sealed record StageRequeued(string JobId, string Stage, string Reason, DateTimeOffset At) : IJobJournalEvent;

/// <summary>A user asked to cancel the job.</summary>
public sealed record JobCancelRequested(string JobId, DateTimeOffset At) : IJobJournalEvent;

/// <summary>Something a watcher should know that changes no state (a worker was lost and the group re-formed, …).</summary>
public sealed record JobNoted(string JobId, string Message, DateTimeOffset At) : IJobJournalEvent;

/// <summary>The job reached a final state.</summary>
public sealed record JobEnded(string JobId, JobState State, string? Error, DateTimeOffset At) : IJobJournalEvent;

/// <summary>
/// Journal and snapshot serialization: System.Text.Json with the record's name as the manifest, so the stored rows are
/// readable and independent of .NET type names and assembly versions.
/// </summary>
/// <remarks>
/// A journal record that cannot be read stops recovery (skipping it would lose a job). A snapshot that cannot be read
/// (corrupt JSON, another format) is returned as <see cref="UnreadableSnapshot"/>: the job manager then rebuilds its book
/// from the journal, which keeps every record.
/// </remarks>
public sealed class JobJournalSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const string Id = "disttrain-jobs";

    /// <summary>The types this serializer is bound to (Akka.Hosting's <c>WithCustomSerializer</c>).</summary>
    public static readonly Type[] Bindings = [typeof(IJobJournalEvent), typeof(JobBookSnapshot)];

    // Losses and metrics may be NaN or infinite (a diverged run is recorded, then failed): JSON has no such numbers.
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly Dictionary<string, Type> Types = typeof(IJobJournalEvent).Assembly.GetTypes()
        .Where(t => t.IsClass && !t.IsAbstract && typeof(IJobJournalEvent).IsAssignableFrom(t))
        .ToDictionary(t => t.Name);

    public override int Identifier => 7431;

    public override string Manifest(object o) => o.GetType().Name;

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Json);

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (manifest == nameof(JobBookSnapshot)) return ReadSnapshot(bytes);
        if (!Types.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown job journal record '{manifest}': {Encoding.UTF8.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 200)))}");
        return JsonSerializer.Deserialize(bytes, type, Json) ?? throw new SerializationException($"empty job journal record '{manifest}'");
    }

    private static object ReadSnapshot(byte[] bytes)
    {
        try
        {
            // The format is read first, so a snapshot of another shape is refused by its number, not by a parse error.
            using var doc = JsonDocument.Parse(bytes);
            if (!doc.RootElement.TryGetProperty(nameof(JobBookSnapshot.Format), out var format) || !format.TryGetInt32(out int f))
                return new UnreadableSnapshot("it has no format number");
            if (f != JobBookSnapshot.CurrentFormat)
                return new UnreadableSnapshot($"it is of format {f}; this build reads format {JobBookSnapshot.CurrentFormat}");
            return doc.RootElement.Deserialize<JobBookSnapshot>(Json) is { Jobs: not null } snapshot
                ? snapshot : new UnreadableSnapshot("it is empty");
        }
        catch (JsonException e)
        {
            return new UnreadableSnapshot($"it is not valid JSON ({e.Message})");
        }
    }
}
