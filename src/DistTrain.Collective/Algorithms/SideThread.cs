namespace DistTrain.Collective;

/// <summary>A long-lived background thread that runs one job at a time, so a collective's second direction needs no thread-pool thread.</summary>
internal sealed class SideThread : IDisposable
{
    private readonly SemaphoreSlim _go = new(0);
    private readonly ManualResetEventSlim _done = new(true);
    private Action? _work;
    private Exception? _error;
    private volatile bool _stop;

    public SideThread(string name) => new Thread(Loop) { IsBackground = true, Name = name }.Start();

    public void Start(Action work)
    {
        _work = work;
        _error = null;
        _done.Reset();
        _go.Release();
    }

    /// <summary>Waits for the job; a job that outlives <paramref name="limit"/> is reported, never waited on forever.</summary>
    public Exception? Join(TimeSpan limit) =>
        _done.Wait(limit) ? _error : new TimeoutException("The collective's send thread did not stop.");

    private void Loop()
    {
        while (true)
        {
            _go.Wait();
            if (_stop) return;
            try { _work!(); }
            catch (Exception e) { _error = e; }
            finally { _work = null; _done.Set(); }
        }
    }

    public void Dispose()
    {
        _stop = true;
        _go.Release();
    }
}
