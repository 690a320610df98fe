using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Worker;

/// <summary>
/// When a rank's step reports leave for the coordinator (<see cref="StepsCompleted"/>): at the end of a
/// <see cref="RunSteps"/> window (the coordinator issues the next window only after every rank's last step, and checks
/// the parameter checksums there); when holding them for one more step as long as the last would make the oldest wait
/// more than <see cref="MaxDelay"/> (so progress, metrics and the coordinator's no-progress deadline stay current, and
/// steps slower than the delay leave one by one, as they end); or when <see cref="MaxCount"/> are pending (one message
/// stays far below the remoting frame size). Runs on the device thread; not thread-safe.
/// </summary>
public sealed class StepReportBatch(Func<DateTime> utcNow)
{
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(2);
    public const int MaxCount = 64;

    private readonly List<StepCompleted> _pending = [];
    private DateTime _oldest;

    public StepReportBatch() : this(() => DateTime.UtcNow) { }

    public int Pending => _pending.Count;

    /// <summary>Adds a report; returns the batch to send now, or null to keep it pending until a later step ends.</summary>
    public StepsCompleted? Add(StepCompleted report, bool windowEnd)
    {
        var now = utcNow();
        if (_pending.Count == 0) _oldest = now;
        _pending.Add(report);
        var nextChance = now + TimeSpan.FromSeconds(Math.Max(0, report.StepSeconds));   // the next step's end, if it is as long
        return windowEnd || _pending.Count >= MaxCount || nextChance - _oldest > MaxDelay ? Flush() : null;
    }

    /// <summary>What is pending, as one message (null when nothing is): before a failure is reported, and at the end.</summary>
    public StepsCompleted? Flush()
    {
        if (_pending.Count == 0) return null;
        var batch = new StepsCompleted([.. _pending]);
        _pending.Clear();
        return batch;
    }
}
