using System.Net;
using DistTrain.Cluster.Worker;
using DistTrain.Collective;
using DistTrain.Collective.Wire;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>
/// The coordinator-mode reducer: one listener for the process's life, one <see cref="CoordinatorReducer"/> per live
/// generation of each group (stages running at the same time each have their own).
/// </summary>
public sealed class CollectiveReducerHost : IReducerHost
{
    private readonly DataPlaneListener _listener;
    private readonly DataPlaneOptions _options;
    private readonly object _gate = new();
    private readonly Dictionary<string, (int Generation, CancellationTokenSource Cancel, Task<CoordinatorReducer> Reducer)> _current = new();

    public CollectiveReducerHost(string bindHost, string advertisedHost, DataPlaneOptions? options = null)
    {
        _listener = DataPlaneListener.Start(IPAddress.Parse(bindHost));
        _options = options ?? new DataPlaneOptions();
        Endpoint = new DataPlaneEndpoint(advertisedHost, _listener.Port);
    }

    public DataPlaneEndpoint Endpoint { get; }

    public void BeginGeneration(string groupId, int generation, int worldSize, GradientWire wire, byte[] groupSecret)
    {
        lock (_gate)
        {
            Stop(groupId);
            var cancel = new CancellationTokenSource();
            var options = _options with { Wire = CollectiveDataPlane.ToWire(wire) };
            // Starts accepting now and completes when every rank connected; it never blocks the actor.
            var reducer = CoordinatorReducer.StartAsync(new ReducerSpec(groupId, generation, worldSize, new GroupSecret(groupSecret)), _listener, options, cancel.Token);
            _current[groupId] = (generation, cancel, reducer);
        }
    }

    public void EndGeneration(string groupId, int generation)
    {
        lock (_gate)
            if (_current.TryGetValue(groupId, out var c) && c.Generation == generation) Stop(groupId);
    }

    private void Stop(string groupId)
    {
        if (!_current.Remove(groupId, out var c)) return;
        c.Cancel.Cancel();
        c.Reducer.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); c.Cancel.Dispose(); }, TaskScheduler.Default);
    }

    public void Dispose()
    {
        lock (_gate) foreach (var id in _current.Keys.ToList()) Stop(id);
        _listener.Dispose();
    }
}
