namespace DistTrain.Cluster.Jobs;

/// <summary>
/// The job book at one journal sequence number, saved every <c>disttrain.jobs.snapshot-every</c> records so recovery
/// reads the snapshot and the records after it instead of the whole journal (<see cref="JobBook.Snapshot"/>,
/// <see cref="JobBook.Restore"/>). Stored as JSON by <see cref="JobJournalSerializer"/>; <paramref name="Format"/> changes
/// whenever this shape does, and a snapshot of another format is not read (recovery falls back to the journal).
/// </summary>
/// <param name="NextOrder">The submission order the next job gets.</param>
public sealed record JobBookSnapshot(int Format, long NextOrder, IReadOnlyList<JobSnapshot> Jobs)
{
    public const int CurrentFormat = 1;
}

/// <summary>One job of a <see cref="JobBookSnapshot"/>: its submission as journaled, and its state after the records so far.</summary>
public sealed record JobSnapshot(JobSubmitted Submitted, long Order, JobState State, string? Error, bool CancelRequested,
    long EventCount, IReadOnlyList<StageSnapshot> Stages);

/// <summary>One stage of a <see cref="JobSnapshot"/>, in the job's dependency order.</summary>
public sealed record StageSnapshot(string Name, JobState State, int Step, int TotalSteps, int Attempts, int Restarts, string? Error,
    IReadOnlyDictionary<string, double> Metrics, string? CheckpointPath, int CheckpointStep);

/// <summary>A stored snapshot this build cannot read (corrupt, or of another format), and why: recovery falls back to the journal.</summary>
public sealed record UnreadableSnapshot(string Reason);
