using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>What the reducer needs from the control plane: the job, the generation, how many workers, and the generation's secret.</summary>
public sealed record ReducerSpec(string JobId, long Generation, int WorldSize, GroupSecret Secret);

/// <summary>
/// The reducer of coordinator mode, hosted in the coordinator process: receives every worker's
/// buckets, sums them in rank order 0..N−1 (so with fp32 on the wire the result is bit-identical
/// to a sequential sum) and streams the sum back to every worker.
/// </summary>
/// <remarks>
/// Threads: one reader and one sender per worker plus one reduce thread, joined by bounded slots
/// (two buckets deep), so receiving bucket b+1, reducing b and sending b−1 overlap.
/// </remarks>
public sealed class CoordinatorReducer : IDisposable
{
    private const int Depth = 2;
    private readonly GroupLinks _g;
    private readonly int _world;
    private readonly CallHeader[] _headers;
    private readonly bool[] _gone;
    private readonly SemaphoreSlim _anyHeader = new(0);
    private readonly SemaphoreSlim[] _headerReady, _headerTaken, _inFull, _inFree, _outFull;
    private readonly SemaphoreSlim _outFree = new(Depth);
    private readonly byte[][][] _inSlots;
    private readonly byte[][] _outSlots = new byte[Depth][];
    private readonly int[] _outLength = new int[Depth];
    private readonly int[] _outPending = new int[Depth];
    private float[] _acc = [], _tmp = [];
    private long _steps;

    private CoordinatorReducer(GroupLinks group, int world)
    {
        _g = group;
        _world = world;
        _headers = new CallHeader[world];
        _gone = new bool[world];
        _headerReady = NewSemaphores(world, 0);
        _headerTaken = NewSemaphores(world, 0);
        _inFull = NewSemaphores(world, 0);
        _inFree = NewSemaphores(world, Depth);
        _outFull = NewSemaphores(world, 0);
        _inSlots = Enumerable.Range(0, world).Select(_ => new byte[Depth][]).ToArray();
        for (int k = 0; k < Depth; k++) _outSlots[k] = [];
        for (int w = 0; w < world; w++)
        {
            int rank = w;
            for (int k = 0; k < Depth; k++) _inSlots[w][k] = [];
            Start($"reducer-read:r{rank}", () => ReadLoop(rank), rank);
            Start($"reducer-send:r{rank}", () => SendLoop(rank), rank);
        }
        Start("reducer-sum", ReduceLoop, GroupSpec.ReducerRank);
    }

    /// <summary>Waits until all <see cref="ReducerSpec.WorldSize"/> workers have connected, then serves until failure or Dispose.</summary>
    public static async Task<CoordinatorReducer> StartAsync(ReducerSpec spec, DataPlaneListener listener,
        DataPlaneOptions? options = null, CancellationToken ct = default)
    {
        if (spec.WorldSize < 1) throw new ArgumentException("WorldSize must be at least 1.");
        var links = await GroupFormation.FormAsync(spec.JobId, spec.Generation, GroupSpec.ReducerRank, spec.WorldSize, spec.Secret,
            [], Enumerable.Range(0, spec.WorldSize).ToList(), listener, options ?? new DataPlaneOptions(), ct).ConfigureAwait(false);
        return new CoordinatorReducer(links, spec.WorldSize);
    }

    /// <summary>Faults with <see cref="PeerFailedException"/> naming the worker when one fails; completes on Dispose.</summary>
    public Task Completion => _g.Ended;
    /// <summary>All-reduce calls fully reduced so far.</summary>
    public long Steps => Interlocked.Read(ref _steps);
    public long BytesSent => _g.BytesSent;
    public long BytesReceived => _g.BytesReceived;

    private static SemaphoreSlim[] NewSemaphores(int n, int initial) => Enumerable.Range(0, n).Select(_ => new SemaphoreSlim(initial)).ToArray();

    private void Start(string name, Action loop, int suspect) => new Thread(() =>
    {
        try { loop(); }
        catch (OperationCanceledException) when (_g.Aborted.IsCancellationRequested) { }
        catch (ReducerBlameException e) { _g.Fail(e.Rank, GroupLinks.ReasonFor(e.InnerException!), e.InnerException); }
        catch (Exception e) { _g.Fail(suspect, GroupLinks.ReasonFor(e), e); }
    }) { IsBackground = true, Name = name }.Start();

    private void ReadLoop(int w)
    {
        var link = _g.Links[w];
        var socket = link.Data;
        var h = new byte[CallHeader.Size];
        int item = 0;
        bool first = true;
        while (true)
        {
            // A worker's next header may already be queued behind this call (a zero-length call returns at once, so a
            // rank can run calls ahead of the others): it must not overwrite this one before the reduce thread compared it.
            if (!first) _headerTaken[w].Wait(_g.Aborted);
            first = false;
            // Between calls a worker may be busy with its backward pass for any length of time.
            socket.ReceiveTimeout = 0;
            try { link.ReceiveFrame(h); }
            catch (Exception) when (_g.WaitDeparted(w))
            {
                // Left between calls: others may still be receiving the last sums, so do not abort them;
                // the next call that needs this worker fails at once instead.
                _gone[w] = true;
                _headerReady[w].Release();
                return;
            }
            socket.ReceiveTimeout = (int)_g.Options.IoTimeout.TotalMilliseconds;
            var header = CallHeader.Read(h);
            _headers[w] = header;
            _headerReady[w].Release();
            _anyHeader.Release();
            int wireBytes = header.Wire.BytesPerElement();
            int length = checked((int)header.Length);
            for (int b = 0; b < RingPlan.BucketCount(length, header.BucketElements); b++)
            {
                int bytes = RingPlan.Bucket(length, header.BucketElements, b).Length * wireBytes;
                _inFree[w].Wait(_g.Aborted);
                int k = item++ % Depth;
                if (_inSlots[w][k].Length < bytes) _inSlots[w][k] = GC.AllocateUninitializedArray<byte>(header.BucketElements * wireBytes, pinned: true);
                // Checked before the slot is released to the reduce thread: a tampered bucket is never summed.
                link.ReceiveFrame(_inSlots[w][k].AsSpan(0, bytes));
                _g.CountReceived(bytes);
                _inFull[w].Release();
            }
        }
    }

    private void ReduceLoop()
    {
        int item = 0;
        var timeout = _g.Options.IoTimeout;
        while (true)
        {
            // Idle until some worker starts a call; from then on the others have IoTimeout to follow.
            _anyHeader.Wait(_g.Aborted);
            var deadline = DateTime.UtcNow + timeout;
            for (int w = 0; w < _world; w++)
            {
                WaitOrBlame(_headerReady[w], w, deadline);
                if (Volatile.Read(ref _gone[w])) throw new ReducerBlameException(w, new EndOfStreamException($"Rank {w} left the group."));
            }
            for (int w = 1; w < _world; w++) _anyHeader.Wait(_g.Aborted);
            var call = _headers[0];
            for (int w = 1; w < _world; w++)
                if (_headers[w] != call)
                    throw new ReducerBlameException(w, new InvalidDataException($"Rank {w} called {_headers[w]} but rank 0 called {call}."));
            for (int w = 0; w < _world; w++) _headerTaken[w].Release();

            int length = checked((int)call.Length), wireBytes = call.Wire.BytesPerElement();
            if (_acc.Length < call.BucketElements) { _acc = new float[call.BucketElements]; _tmp = new float[call.BucketElements]; }
            for (int b = 0; b < RingPlan.BucketCount(length, call.BucketElements); b++)
            {
                int n = RingPlan.Bucket(length, call.BucketElements, b).Length;
                _outFree.Wait(_g.Aborted);
                int k = item++ % Depth;
                if (_outSlots[k].Length < n * wireBytes) _outSlots[k] = GC.AllocateUninitializedArray<byte>(call.BucketElements * wireBytes, pinned: true);
                var acc = call.Wire == WireFormat.Float32 ? MemoryMarshal.Cast<byte, float>(_outSlots[k].AsSpan(0, n * 4)) : _acc.AsSpan(0, n);
                // Fixed rank order: ((x0 + x1) + x2) + … so results never depend on arrival order.
                for (int w = 0; w < _world; w++)
                {
                    WaitOrBlame(_inFull[w], w, DateTime.UtcNow + timeout);
                    var slot = _inSlots[w][k].AsSpan(0, n * wireBytes);
                    if (call.Wire == WireFormat.Float32)
                    {
                        var x = MemoryMarshal.Cast<byte, float>(slot);
                        if (w == 0) x.CopyTo(acc); else TensorPrimitives.Add(acc, x, acc);
                    }
                    else if (w == 0) call.Wire.Decode(slot, acc);
                    else
                    {
                        call.Wire.Decode(slot, _tmp.AsSpan(0, n));
                        TensorPrimitives.Add(acc, _tmp.AsSpan(0, n), acc);
                    }
                    _inFree[w].Release();
                }
                if (call.Wire != WireFormat.Float32) call.Wire.Encode(acc, _outSlots[k]);
                _outLength[k] = n * wireBytes;
                Volatile.Write(ref _outPending[k], _world);
                for (int w = 0; w < _world; w++) _outFull[w].Release();
            }
            Interlocked.Increment(ref _steps);
        }
    }

    private void WaitOrBlame(SemaphoreSlim s, int w, DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        if (!s.Wait(left > TimeSpan.Zero ? left : TimeSpan.Zero, _g.Aborted))
            throw new ReducerBlameException(w, new TimeoutException($"Rank {w} sent nothing for {_g.Options.IoTimeout}."));
    }

    private void SendLoop(int w)
    {
        var link = _g.Links[w];
        int item = 0;
        while (true)
        {
            _outFull[w].Wait(_g.Aborted);
            int k = item++ % Depth;
            link.SendFrame(_outSlots[k].AsSpan(0, _outLength[k]));
            _g.CountSent(_outLength[k]);
            if (Interlocked.Decrement(ref _outPending[k]) == 0) _outFree.Release();
        }
    }

    /// <summary>Stops serving and closes every worker connection.</summary>
    public void Dispose() => _g.Dispose();

    internal void Crash() => _g.Crash();

    /// <summary>Carries the worker to blame out of the reduce thread.</summary>
    private sealed class ReducerBlameException(int rank, Exception inner) : Exception(inner.Message, inner)
    {
        public int Rank { get; } = rank;
    }
}
