using System.Collections.Concurrent;

namespace DistTrain.Execution;

/// <summary>
/// One dedicated OS thread per device. TorchSharp dispose scopes are thread-static and a CUDA context is
/// bound to a thread, so all of a device's tensor work runs here, in order; callers get a Task and never
/// block (actors pipe the result to themselves).
/// </summary>
public sealed class DeviceThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public DeviceThread(string device)
    {
        Device = device;
        _thread = new Thread(Loop) { IsBackground = true, Name = $"device-{device}" };
        _thread.Start();
    }

    public string Device { get; }

    /// <summary>Queues <paramref name="work"/>; the task completes with its result or its exception.</summary>
    public Task<T> Run<T>(Func<T> work)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _work.Add(() =>
            {
                try { tcs.SetResult(work()); }
                catch (Exception e) { tcs.SetException(e); }
            });
        }
        catch (InvalidOperationException)
        {
            tcs.SetException(new ObjectDisposedException(nameof(DeviceThread), $"device thread {Device} is shut down"));
        }
        return tcs.Task;
    }

    private void Loop()
    {
        foreach (var item in _work.GetConsumingEnumerable()) item();
    }

    /// <summary>Stops accepting work, lets queued work finish (bounded by <paramref name="timeout"/>), then returns.</summary>
    public bool Shutdown(TimeSpan timeout)
    {
        _work.CompleteAdding();
        return _thread.Join(timeout);
    }

    public void Dispose()
    {
        // A thread stuck in native code past the timeout keeps its queue; disposing it under the thread would crash it.
        if (Shutdown(TimeSpan.FromSeconds(30))) _work.Dispose();
    }
}
