using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>The coordinator-mode reducer living in the coordinator process: it sums float buffers and never sees a tensor.</summary>
public interface IReducerHost : IDisposable
{
    DataPlaneEndpoint Endpoint { get; }

    /// <summary>
    /// Serves one generation of one group (<see cref="DataPlaneGroups.Id"/>): accepts exactly <paramref name="worldSize"/> ranks
    /// that prove <paramref name="groupSecret"/> (the one the generation's PrepareGroup messages carry) and reduces until ended.
    /// </summary>
    void BeginGeneration(string groupId, int generation, int worldSize, GradientWire wire, byte[] groupSecret);

    /// <summary>Stops serving the generation; ranks blocked on it fail at once.</summary>
    void EndGeneration(string groupId, int generation);
}
