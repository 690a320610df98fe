using System.Diagnostics;
using System.Runtime.InteropServices;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>
/// Worker side of coordinator mode: stream the whole buffer to the <see cref="CoordinatorReducer"/>
/// while the calling thread receives the sums it streams back, bucket by bucket (one tagged frame per bucket).
/// </summary>
internal sealed unsafe class CoordinatorAllReduce : IAllReduce, IDisposable
{
    private readonly GroupLinks _g;
    private readonly int _bucket;
    private readonly byte[] _sendStage, _recvStage;
    private readonly SideThread _sender;
    private long _sequence;
    private int _busy;

    public CoordinatorAllReduce(GroupLinks group, int rank)
    {
        _g = group;
        _bucket = group.Options.BucketElements;
        // Low-precision buckets are encoded whole (2 bytes an element), so each is one tagged frame.
        _sendStage = GC.AllocateArray<byte>(_bucket * 2, pinned: true);
        _recvStage = GC.AllocateArray<byte>(_bucket * 2, pinned: true);
        _sender = new SideThread($"coord-send:r{rank}");
    }

    public AllReduceStats AllReduce(Span<float> buffer) => AllReduce(buffer, _g.Options.Wire);

    public AllReduceStats AllReduce(Span<float> buffer, WireFormat wire)
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0) throw new InvalidOperationException("One all-reduce at a time per group.");
        try
        {
            _g.ThrowIfFailed();
            var clock = Stopwatch.StartNew();
            var header = new CallHeader(_sequence++, buffer.Length, _bucket, wire);
            var link = _g.Links[GroupSpec.ReducerRank];
            long sent = 0, received = 0;
            Exception? failure = null;
            fixed (float* p = buffer)
            {
                float* basePtr = p;
                int length = buffer.Length;
                _sender.Start(() => sent = Stream(basePtr, length, header, link, send: true));
                try { received = Stream(p, length, header, link, send: false); }
                catch (Exception e) { failure = _g.Fail(GroupSpec.ReducerRank, GroupLinks.ReasonFor(e), e); }
                var sendError = _sender.Join(_g.Options.IoTimeout + _g.Options.Grace + TimeSpan.FromSeconds(5));
                if (sendError is not null) failure ??= _g.Fail(GroupSpec.ReducerRank, GroupLinks.ReasonFor(sendError), sendError);
            }
            if (failure is not null) throw GroupLinks.Rethrowable(failure);
            return new AllReduceStats(buffer.Length, RingPlan.BucketCount(buffer.Length, _bucket), sent, received, clock.Elapsed.TotalSeconds);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    // One frame per reducer bucket in each direction, so each frame's tag is checked where the reducer sums it.
    private long Stream(float* p, int length, CallHeader header, Link link, bool send)
    {
        long bytes = 0;
        if (send)
        {
            Span<byte> h = stackalloc byte[CallHeader.Size];
            header.Write(h);
            link.SendFrame(h);
            bytes += CallHeader.Size;
        }
        var stage = send ? _sendStage : _recvStage;
        for (int b = 0; b < RingPlan.BucketCount(length, _bucket); b++)
        {
            var (offset, n) = RingPlan.Bucket(length, _bucket, b);
            var values = new Span<float>(p + offset, n);
            if (header.Wire == WireFormat.Float32)
            {
                // Sums come back only after the reducer has all of this bucket (and checked its tag), so receiving in place is safe.
                if (send) link.SendFrame(MemoryMarshal.AsBytes(values));
                else link.ReceiveFrame(MemoryMarshal.AsBytes(values));
            }
            else
            {
                var wire = stage.AsSpan(0, n * 2);
                if (send) { header.Wire.Encode(values, wire); link.SendFrame(wire); }
                else { link.ReceiveFrame(wire); header.Wire.Decode(wire, values); }
            }
            int moved = n * header.Wire.BytesPerElement();
            bytes += moved;
            if (send) _g.CountSent(moved); else _g.CountReceived(moved);
        }
        return bytes;
    }

    public void Dispose() => _sender.Dispose();
}
