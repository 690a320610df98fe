namespace DistTrain.Collective;

/// <summary>
/// Counts segments the receive thread has finished and the send thread may forward.
/// Unlike SemaphoreSlim it never spins: on two shared cores a spinning sender steals the very
/// core its receiver needs to produce the next segment.
/// </summary>
internal sealed class StepSignal
{
    private readonly object _gate = new();
    private long _count;
    private bool _aborted;

    public void Release()
    {
        lock (_gate)
        {
            _count++;
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Takes one count; false on timeout; throws once <see cref="Abort"/> was called.</summary>
    public bool Wait(TimeSpan timeout)
    {
        lock (_gate)
        {
            var until = DateTime.UtcNow + timeout;
            while (_count == 0)
            {
                if (_aborted) throw new OperationCanceledException("The group was aborted.");
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, left);
            }
            _count--;
            return true;
        }
    }

    public void Abort()
    {
        lock (_gate)
        {
            _aborted = true;
            Monitor.PulseAll(_gate);
        }
    }
}
