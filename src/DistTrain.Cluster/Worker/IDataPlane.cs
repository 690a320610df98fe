using DistTrain.Contracts.Protocols;
using DistTrain.Execution;

namespace DistTrain.Cluster.Worker;

/// <summary>A worker's data-plane endpoint and the factory for one group's reducer (ring or coordinator mode).</summary>
public interface IDataPlane : IDisposable
{
    DataPlaneEndpoint Endpoint { get; }

    IDataPlaneReducer CreateReducer(PrepareGroup group);

    /// <summary>The rank a data-plane failure blames, when the exception names one.</summary>
    int? SuspectRank(Exception error);
}

/// <summary>One group's all-reduce, connected on the device thread and abortable from any thread.</summary>
public interface IDataPlaneReducer : IGradientReducer, IDisposable
{
    /// <summary>Connects to every peer (or the reducer); throws on timeout, naming the missing rank.</summary>
    void Connect();

    /// <summary>Closes the group's sockets so a collective blocked on the device thread fails at once.</summary>
    void Abort();

    /// <summary>Bytes of all buffers all-reduced so far, in their wire format (read on the device thread).</summary>
    long BytesReduced { get; }
}
