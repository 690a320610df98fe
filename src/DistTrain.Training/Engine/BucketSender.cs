using System.Diagnostics;
using System.Runtime.ExceptionServices;
using DistTrain.Execution;

namespace DistTrain.Training.Engine;

/// <summary>
/// Reduces gradient buckets on a thread of its own, in the order they were queued, while the device thread goes on
/// with backward. The first failure skips the rest (the group is unusable after one) and is rethrown by
/// <see cref="WaitAll"/> with its original type, so the worker still learns which peer failed.
/// </summary>
internal sealed class BucketSender : IDisposable
{
    /// <summary>Longer than any data-plane timeout, so a lost peer surfaces as the reducer's own error; only a stuck reducer reaches it.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    private readonly IGradientReducer _reducer;
    private readonly Queue<(float[] Buffer, int Offset, int Length, int ExactTail)> _queue = new();
    private readonly object _gate = new();
    private readonly Thread _thread;
    private int _pending;
    private bool _stop;
    private Exception? _error;
    private double _busySeconds;

    public BucketSender(IGradientReducer reducer)
    {
        _reducer = reducer;
        _thread = new Thread(Loop) { IsBackground = true, Name = "gradient buckets" };
        _thread.Start();
    }

    /// <summary>Queues buffer[offset, offset + length) for an in-place sum over ranks.</summary>
    public void Send(float[] buffer, int offset, int length, int exactTail)
    {
        lock (_gate)
        {
            _queue.Enqueue((buffer, offset, length, exactTail));
            _pending++;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits until every queued bucket is reduced; returns the seconds the thread spent inside the reducer since the last call.</summary>
    public double WaitAll()
    {
        var deadline = Stopwatch.StartNew();
        lock (_gate)
        {
            while (_pending > 0)
            {
                var left = Limit - deadline.Elapsed;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left))
                    throw new TimeoutException($"the gradient all-reduce did not finish within {Limit.TotalMinutes:F0} minutes");
            }
            var error = _error;
            double busy = _busySeconds;
            (_error, _busySeconds) = (null, 0);
            if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
            return busy;
        }
    }

    private void Loop()
    {
        while (true)
        {
            (float[] Buffer, int Offset, int Length, int ExactTail) item;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stop) Monitor.Wait(_gate);
                if (_stop) return;
                item = _queue.Dequeue();
            }
            var clock = Stopwatch.StartNew();
            Exception? failure = null;
            bool skip;
            lock (_gate) skip = _error is not null;
            if (!skip)
            {
                try { _reducer.AllReduceSum(item.Buffer, item.Offset, item.Length, item.ExactTail); }
                catch (Exception e) { failure = e; }
            }
            lock (_gate)
            {
                _error ??= failure;
                _busySeconds += clock.Elapsed.TotalSeconds;
                _pending--;
                Monitor.PulseAll(_gate);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stop = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join(TimeSpan.FromSeconds(30));   // a call still running ends when the group is aborted; the thread is a background one
    }
}
