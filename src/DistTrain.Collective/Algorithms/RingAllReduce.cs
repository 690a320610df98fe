using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>
/// Ring all-reduce: N−1 reduce-scatter steps then N−1 all-gather steps per bucket, each step cut
/// into segments. A send thread and the calling (receive) thread run concurrently; a segment is
/// forwarded as soon as it has been received and reduced, so both directions of every link stay busy.
/// </summary>
/// <remarks>
/// Step s on rank r sends chunk (r−s) mod N to the right and receives chunk (r−s−1) mod N from the
/// left; what is sent at step s is exactly what was received at step s−1, so one counter links the
/// two threads. Buckets are interleaved on the wire (<see cref="RingPlan.Schedule"/>) so the ring
/// stays busy while a step waits on its predecessor.
/// Chunk c is summed in the fixed order x_c + x_(c+1) + … + x_(c−1), hence bit-identical run to run
/// for a given world size, but not bit-identical to a sequential sum.
/// Fully reduced chunks are rounded to the wire format by their owner before the all-gather, so
/// every rank ends with the same bits even with bf16/fp16 on the wire.
/// </remarks>
internal sealed unsafe class RingAllReduce : IAllReduce, IDisposable
{
    private readonly GroupLinks _g;
    private readonly int _rank, _world, _left, _right;
    private readonly int _segment, _bucket;
    private readonly byte[] _recvStage, _sendStage;
    private readonly float[] _decodeStage;
    private readonly StepSignal _ready = new();
    private readonly SideThread _sender;
    private long _sequence;
    private int _busy;

    public RingAllReduce(GroupLinks group, int rank, int world)
    {
        _g = group;
        _rank = rank;
        _world = world;
        (_left, _right) = RingPlan.Neighbours(rank, world);
        _segment = group.Options.SegmentElements;
        _bucket = group.Options.BucketElements;
        _recvStage = GC.AllocateArray<byte>(_segment * sizeof(float), pinned: true);
        _sendStage = GC.AllocateArray<byte>(_segment * sizeof(float), pinned: true);
        _decodeStage = GC.AllocateArray<float>(_segment, pinned: true);
        _sender = new SideThread($"ring-send:r{rank}");
        group.Aborted.Register(_ready.Abort);
    }

    public AllReduceStats AllReduce(Span<float> buffer) => AllReduce(buffer, _g.Options.Wire);

    public AllReduceStats AllReduce(Span<float> buffer, WireFormat wire)
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0) throw new InvalidOperationException("One all-reduce at a time per group.");
        try
        {
            _g.ThrowIfFailed();
            if (_world == 1) return new AllReduceStats(buffer.Length, 0, 0, 0, 0);
            var clock = Stopwatch.StartNew();
            var header = new CallHeader(_sequence++, buffer.Length, _bucket, wire);
            long sent = 0, received = 0;
            Exception? failure = null;
            fixed (float* p = buffer)
            {
                float* basePtr = p;
                int length = buffer.Length;
                _sender.Start(() => sent = SendAll(basePtr, length, header));
                try { received = ReceiveAll(p, length, header); }
                catch (Exception e) { failure = Blame(_left, e); }
                // The sender must be finished before the pin on the caller's buffer is released.
                var sendError = _sender.Join(_g.Options.IoTimeout + _g.Options.Grace + TimeSpan.FromSeconds(5));
                if (sendError is not null) failure ??= Blame(_right, sendError);
            }
            if (failure is not null) throw GroupLinks.Rethrowable(failure);
            return new AllReduceStats(buffer.Length, RingPlan.BucketCount(buffer.Length, _bucket), sent, received, clock.Elapsed.TotalSeconds);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    private Exception Blame(int suspect, Exception e) => _g.Fail(suspect, GroupLinks.ReasonFor(e), e);

    private long SendAll(float* p, int length, CallHeader header)
    {
        var link = _g.Links[_right];
        Span<byte> h = stackalloc byte[CallHeader.Size];
        header.Write(h);
        link.SendFrame(h);
        long bytes = CallHeader.Size;
        var wire = header.Wire;
        foreach (var (b, s) in RingPlan.Schedule(RingPlan.BucketCount(length, _bucket), _world))
        {
            var (bOff, bLen) = RingPlan.Bucket(length, _bucket, b);
            var (cOff, cLen) = RingPlan.Chunk(bLen, _world, RingPlan.Mod(_rank - s, _world));
            for (int o = 0; o < cLen; o += _segment)
            {
                int n = Math.Min(_segment, cLen - o);
                // Steps after the first forward what the receive thread reduced or copied one diagonal earlier.
                if (s > 0 && !_ready.Wait(_g.Options.IoTimeout))
                    throw new TimeoutException("Waited too long for the left neighbour's data.");
                var values = new Span<float>(p + bOff + cOff + o, n);
                ReadOnlySpan<byte> payload;
                if (wire == WireFormat.Float32) payload = MemoryMarshal.AsBytes(values);
                else
                {
                    var enc = _sendStage.AsSpan(0, n * 2);
                    wire.Encode(values, enc);
                    // The owner of a fully reduced chunk keeps the rounded values it sends, so all ranks agree bit for bit.
                    if (s == _world - 1) wire.Decode(enc, values);
                    payload = enc;
                }
                link.SendFrame(payload);
                bytes += payload.Length;
                _g.CountSent(payload.Length);
            }
        }
        return bytes;
    }

    private long ReceiveAll(float* p, int length, CallHeader expected)
    {
        var link = _g.Links[_left];
        Span<byte> h = stackalloc byte[CallHeader.Size];
        link.ReceiveFrame(h);
        var got = CallHeader.Read(h);
        if (got != expected) throw new InvalidDataException($"Call mismatch: rank {_left} sent {got}, rank {_rank} expected {expected}.");
        long bytes = CallHeader.Size;
        var wireFormat = expected.Wire;
        int lastStep = 2 * (_world - 1) - 1, wireBytes = wireFormat.BytesPerElement();
        foreach (var (b, s) in RingPlan.Schedule(RingPlan.BucketCount(length, _bucket), _world))
        {
            var (bOff, bLen) = RingPlan.Bucket(length, _bucket, b);
            var (cOff, cLen) = RingPlan.Chunk(bLen, _world, RingPlan.Mod(_rank - s - 1, _world));
            bool reduce = s < _world - 1;
            for (int o = 0; o < cLen; o += _segment)
            {
                int n = Math.Min(_segment, cLen - o);
                var dst = new Span<float>(p + bOff + cOff + o, n);
                if (wireFormat == WireFormat.Float32)
                {
                    if (reduce) link.ReceiveAdd(dst, _recvStage);   // over TCP each frame's tag is checked before a byte of it is summed
                    else link.ReceiveFrame(MemoryMarshal.AsBytes(dst)); // all-gather lands in place; a bad tag fails the call
                }
                else
                {
                    var received = _recvStage.AsSpan(0, n * wireBytes);
                    link.ReceiveFrame(received);
                    if (reduce)
                    {
                        wireFormat.Decode(received, _decodeStage.AsSpan(0, n));
                        TensorPrimitives.Add(dst, _decodeStage.AsSpan(0, n), dst);
                    }
                    else wireFormat.Decode(received, dst);
                }
                bytes += n * wireBytes;
                _g.CountReceived(n * wireBytes);
                if (s < lastStep) _ready.Release();
            }
        }
        return bytes;
    }

    public void Dispose() => _sender.Dispose();
}
