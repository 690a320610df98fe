using System.Net;
using DistTrain.Cluster.Worker;
using DistTrain.Collective;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>The coordinator-mode reducer: one listener for the process's life, one <see cref="CoordinatorReducer"/> per generation.</summary>
public sealed class CollectiveReducerHost : IReducerHost
{
    private readonly DataPlaneListener _listener;
    private readonly DataPlaneOptions _options;
    private readonly object _gate = new();
    private (string JobId, int Generation, CancellationTokenSource Cancel, Task<CoordinatorReducer> Reducer)? _current;

    public CollectiveReducerHost(string bindHost, string advertisedHost, DataPlaneOptions? options = null)
    {
        _listener = DataPlaneListener.Start(IPAddress.Parse(bindHost));
        _options = options ?? new DataPlaneOptions();
        Endpoint = new DataPlaneEndpoint(advertisedHost, _listener.Port);
    }

    public DataPlaneEndpoint Endpoint { get; }

    public void BeginGeneration(string jobId, int generation, int worldSize, GradientWire wire)
    {
        lock (_gate)
        {
            StopCurrent();
            var cancel = new CancellationTokenSource();
            var options = _options with { Wire = CollectiveDataPlane.ToWire(wire) };
            // Starts accepting now and completes when every rank connected; it never blocks the actor.
            var reducer = CoordinatorReducer.StartAsync(new ReducerSpec(jobId, generation, worldSize), _listener, options, cancel.Token);
            _current = (jobId, generation, cancel, reducer);
        }
    }

    public void EndGeneration(string jobId, int generation)
    {
        lock (_gate)
            if (_current is { } c && c.JobId == jobId && c.Generation == generation) StopCurrent();
    }

    private void StopCurrent()
    {
        if (_current is not { } c) return;
        _current = null;
        c.Cancel.Cancel();
        c.Reducer.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); c.Cancel.Dispose(); }, TaskScheduler.Default);
    }

    public void Dispose()
    {
        lock (_gate) StopCurrent();
        _listener.Dispose();
    }
}
