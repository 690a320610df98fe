using System.Net;
using DistTrain.Collective;
using DistTrain.Collective.Wire;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Worker;

/// <summary>A worker's data plane: one TCP listener for its life, and a <see cref="ProcessGroup"/> per group generation.</summary>
public sealed class CollectiveDataPlane : IDataPlane
{
    private readonly DataPlaneListener _listener;
    private readonly DataPlaneOptions _options;

    public CollectiveDataPlane(string bindHost, string advertisedHost, DataPlaneOptions? options = null)
    {
        _listener = DataPlaneListener.Start(IPAddress.Parse(bindHost));
        _options = options ?? new DataPlaneOptions();
        Endpoint = new DataPlaneEndpoint(advertisedHost, _listener.Port);
    }

    public DataPlaneEndpoint Endpoint { get; }

    public IDataPlaneReducer CreateReducer(PrepareGroup group)
    {
        var spec = new GroupSpec(DataPlaneGroups.Id(group.JobId, group.Stage), group.Generation, group.Rank, group.WorldSize,
            group.Peers.Select(p => GroupSpec.ParseEndPoint($"{p.Host}:{p.Port}")).ToList(),
            group.Aggregation == GradientAggregation.Ring ? AllReduceAlgorithm.Ring : AllReduceAlgorithm.Coordinator,
            group.Reducer is null ? null : GroupSpec.ParseEndPoint($"{group.Reducer.Host}:{group.Reducer.Port}"))
        {
            Secret = new GroupSecret(group.GroupSecret ?? throw new ArgumentException("PrepareGroup carries no group secret.")),
        };
        return new GroupReducer(spec, _listener, _options with { Wire = ToWire(group.Wire) });
    }

    public int? SuspectRank(Exception error) => error switch
    {
        PeerFailedException p when p.Rank >= 0 => p.Rank,
        AggregateException { InnerException: PeerFailedException p } when p.Rank >= 0 => p.Rank,
        _ => null,
    };

    public static WireFormat ToWire(GradientWire wire) => wire switch
    {
        GradientWire.Bf16 => WireFormat.BFloat16,
        GradientWire.Fp16 => WireFormat.Float16,
        _ => WireFormat.Float32,
    };

    public void Dispose() => _listener.Dispose();

    /// <summary>The training engine's reducer over one generation's process group.</summary>
    private sealed class GroupReducer(GroupSpec spec, DataPlaneListener listener, DataPlaneOptions options) : IDataPlaneReducer
    {
        private ProcessGroup? _group;
        private volatile bool _aborted;

        public int Rank => spec.Rank;
        public int WorldSize => spec.WorldSize;
        public long BytesReduced { get; private set; }

        public void Connect()
        {
            if (spec.WorldSize == 1 && spec.Algorithm == AllReduceAlgorithm.Ring) return;   // nothing to connect to
            var group = ProcessGroup.ConnectAsync(spec, listener, options).GetAwaiter().GetResult();
            _group = group;
            if (_aborted) group.Dispose();
        }

        public void AllReduceSum(float[] buffer, int offset, int length, int exactTail)
        {
            if (spec.WorldSize == 1 && spec.Algorithm == AllReduceAlgorithm.Ring) return;
            var group = _group ?? throw new InvalidOperationException("the data-plane group is not connected");
            if (options.Wire == WireFormat.Float32 || exactTail == 0)
            {
                group.AllReduce(buffer.AsSpan(offset, length));
                BytesReduced += (long)length * options.Wire.BytesPerElement();
            }
            else
            {
                // Counts, flags and loss sums must stay exact: they travel as fp32 whatever the gradient wire format.
                if (length > exactTail) group.AllReduce(buffer.AsSpan(offset, length - exactTail));
                group.AllReduce(buffer.AsSpan(offset + length - exactTail, exactTail), WireFormat.Float32);
                BytesReduced += (long)(length - exactTail) * options.Wire.BytesPerElement() + (long)exactTail * WireFormat.Float32.BytesPerElement();
            }
        }

        public void Abort()
        {
            _aborted = true;
            _group?.Dispose();
        }

        public void Dispose() => _group?.Dispose();
    }
}
