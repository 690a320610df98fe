using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>
/// One remote member: a blocking data socket for payload and a control socket for failure notices. When both members
/// share a /dev/shm, payload travels through a <see cref="SharedMemoryChannel"/> instead and the data socket stays idle.
/// </summary>
internal sealed class Link(int rank, Socket data, Socket control, Session session)
{
    private readonly object _controlSend = new();
    private readonly byte[] _sendTag = new byte[32], _recvTag = new byte[32];
    public int Rank { get; } = rank;
    public Socket Data { get; } = data;
    public Socket Control { get; } = control;

    /// <summary>The shared-memory data channel, once negotiated at formation (<see cref="GroupFormation"/>); null: TCP.</summary>
    public SharedMemoryChannel? SharedMemory { get; private set; }

    /// <summary>"shm" or "tcp": how this link's data frames travel.</summary>
    public string Transport => SharedMemory is null ? "tcp" : "shm";

    /// <summary>Moves the data frames onto <paramref name="channel"/>; from now on both ends must (formation agrees it).</summary>
    public void UseSharedMemory(SharedMemoryChannel channel) => SharedMemory = channel;

    /// <summary>Wakes every thread blocked on this link's data path, here and (for shared memory) in the peer.</summary>
    public void KillData()
    {
        SharedMemory?.Abort();
        SocketIo.Kill(Data);
    }

    /// <summary>Sends one data frame, followed by its tag when the group seals frames. Call from one thread per direction.</summary>
    public void SendFrame(ReadOnlySpan<byte> payload)
    {
        if (SharedMemory is { } shm) { shm.Write(payload); return; }
        var seal = session.Outgoing;
        SocketIo.SendExact(Data, payload);
        if (seal is null) return;
        var tag = _sendTag.AsSpan(0, seal.TagSize);
        seal.Seal(payload, tag);
        SocketIo.SendExact(Data, tag);
    }

    /// <summary>Receives one data frame into <paramref name="payload"/> and checks its tag before the caller may use a byte of it.</summary>
    public void ReceiveFrame(Span<byte> payload)
    {
        if (SharedMemory is { } shm) { shm.Read(payload); return; }
        var seal = session.Incoming;
        SocketIo.ReceiveExact(Data, payload);
        if (seal is null) return;
        var tag = _recvTag.AsSpan(0, seal.TagSize);
        SocketIo.ReceiveExact(Data, tag);
        seal.Verify(payload, tag, Rank);
    }

    /// <summary>
    /// Receives one frame of fp32 values and adds it into <paramref name="dst"/>: from shared memory straight out of the
    /// ring; over TCP through <paramref name="stage"/>, whose tag is checked before a byte of it is summed.
    /// </summary>
    public void ReceiveAdd(Span<float> dst, Span<byte> stage)
    {
        if (SharedMemory is { } shm) { shm.ReadAdd(dst); return; }
        var bytes = stage[..(dst.Length * sizeof(float))];
        ReceiveFrame(bytes);
        System.Numerics.Tensors.TensorPrimitives.Add(dst, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes), dst);
    }

    public void TrySendControl(ControlFrame frame)
    {
        Span<byte> b = stackalloc byte[ControlFrame.Size];
        frame.Write(b);
        try { lock (_controlSend) SocketIo.SendExact(Control, b); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException) { }
    }
}

/// <summary>
/// The connected links of one member (a rank, or the reducer) plus the failure state they share:
/// formation with handshakes, control-channel readers, culprit naming, and close.
/// </summary>
internal sealed class GroupLinks : IDisposable
{
    private readonly object _gate = new();
    private readonly CulpritResolver _resolver = new();
    private readonly ManualResetEventSlim _strongEvidence = new();
    private readonly ManualResetEventSlim _verdictReady = new();
    private readonly CancellationTokenSource _aborted = new();
    private readonly DataPlaneListener.Registration? _registration;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<int> _departed = new();
    private Exception? _failure;
    private bool _resolving, _closed;
    private long _bytesSent, _bytesReceived;

    internal GroupLinks(string jobId, long generation, int localRank, DataPlaneOptions options,
        IReadOnlyDictionary<int, Link> links, DataPlaneListener.Registration? registration)
    {
        JobId = jobId;
        Generation = generation;
        LocalRank = localRank;
        Options = options;
        Links = links;
        _registration = registration;
        // Dedicated threads, not the thread pool: a verdict must not wait for a starved pool to run the reader.
        foreach (var link in links.Values)
            new Thread(() => ReadControl(link)) { IsBackground = true, Name = $"control:r{localRank}<-r{link.Rank}" }.Start();
        // Callers learn of failures from the collective itself; nobody has to await this task.
        _ended.Task.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
    }

    public string JobId { get; }
    public long Generation { get; }
    public int LocalRank { get; }
    public DataPlaneOptions Options { get; }
    public IReadOnlyDictionary<int, Link> Links { get; }

    /// <summary>Cancelled the moment the group fails or closes; blocked waits in collectives watch it.</summary>
    public CancellationToken Aborted => _aborted.Token;
    public Exception? Failure { get { lock (_gate) return _failure; } }

    /// <summary>Faults with the final <see cref="PeerFailedException"/> once the culprit is named; completes on a clean close.</summary>
    public Task Ended => _ended.Task;
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);
    public void CountSent(long n) => Interlocked.Add(ref _bytesSent, n);
    public void CountReceived(long n) => Interlocked.Add(ref _bytesReceived, n);

    /// <summary>Throws the group's failure; a peer that left in an orderly way fails the group here, at the next call.</summary>
    public void ThrowIfFailed()
    {
        int? departed;
        lock (_gate) departed = _failure is null && _departed.Count > 0 ? _departed.Min() : null;
        if (departed is int rank)
        {
            lock (_gate) _resolving = true;
            Conclude(rank, PeerFailureReason.Left, null);
        }
        var f = Failure;
        if (f is not null) throw Rethrowable(f);
    }

    /// <summary>True once <paramref name="rank"/> has said goodbye (closed its group in an orderly way).</summary>
    public bool HasDeparted(int rank) { lock (_gate) return _departed.Contains(rank); }

    /// <summary>
    /// After a data socket ended, waits up to FailureGrace for that peer's goodbye: the departing side
    /// sends Leave before closing, but the two sockets are read by different threads.
    /// </summary>
    public bool WaitDeparted(int rank)
    {
        var until = DateTime.UtcNow + Options.Grace;
        lock (_gate)
        {
            while (!_departed.Contains(rank) && _failure is null)
            {
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, left);
            }
            return _departed.Contains(rank);
        }
    }

    private void ReadControl(Link link)
    {
        var buf = new byte[ControlFrame.Size];
        try
        {
            link.Control.ReceiveTimeout = 0;   // control is idle between failures; only a close ends the read
            while (true)
            {
                SocketIo.ReceiveExact(link.Control, buf);
                var f = ControlFrame.Read(buf);
                switch (f.Kind)
                {
                    case ControlKind.Suspect:
                        lock (_gate) _resolver.AddSuspicion(link.Rank, f.Rank, (PeerFailureReason)f.Reason);
                        break;
                    case ControlKind.Abort: OnStrong(f.Rank, (PeerFailureReason)f.Reason); break;
                    case ControlKind.Leave: OnLeave(link.Rank); return;
                }
            }
        }
        catch (Exception)
        {
            // A control channel only ends when its peer closes: without a Leave first, the peer is gone.
            OnStrong(link.Rank, PeerFailureReason.ConnectionLost);
        }
    }

    /// <summary>
    /// An orderly goodbye does not abort: the peer finished its part of any call in flight (others may
    /// still be draining its last bytes). The group fails at the next call, or now if data stops short.
    /// </summary>
    private void OnLeave(int rank)
    {
        lock (_gate)
        {
            if (_failure is not null || _closed) return;
            _resolver.AddStrong(rank, PeerFailureReason.Left);
            _departed.Add(rank);
            Monitor.PulseAll(_gate);
        }
        _strongEvidence.Set();
    }

    private void OnStrong(int rank, PeerFailureReason reason)
    {
        bool finalizeNow;
        lock (_gate)
        {
            if (_failure is not null || _closed) return;
            _resolver.AddStrong(rank, reason);
            finalizeNow = !_resolving;
            _resolving = true;
        }
        _strongEvidence.Set();
        if (finalizeNow) Conclude(rank, reason, null);
    }

    /// <summary>
    /// Reports a data-plane error seen on the link to <paramref name="suspect"/> and returns the group's
    /// verdict. May block up to FailureGrace while peers' reports arrive, so the exception names the
    /// rank that actually failed rather than the neighbour that noticed first.
    /// </summary>
    public Exception Fail(int suspect, PeerFailureReason reason, Exception? inner)
    {
        bool first;
        lock (_gate)
        {
            if (_failure is not null) return _failure;
            _resolver.AddSuspicion(LocalRank, suspect, reason);
            first = !_resolving;
            _resolving = true;
        }
        if (!first)
        {
            _verdictReady.Wait(Options.Grace + TimeSpan.FromSeconds(5));
            return Failure ?? new PeerFailedException(suspect, reason, LocalRank, Generation, inner);
        }

        if (inner is FrameIntegrityException)
        {
            // A frame that fails its tag is proof against the link it came on, not a suspicion to weigh against the
            // peers' reports (the sender, cut off, would otherwise blame us for the closed connection).
            lock (_gate) _resolver.AddStrong(suspect, reason);
            Conclude(suspect, reason, inner);
            return Failure!;
        }
        foreach (var link in Links.Values) link.TrySendControl(new ControlFrame(ControlKind.Suspect, suspect, (byte)reason));
        // Unblock our other data threads now; the verdict only needs the control channels.
        AbortData();
        _strongEvidence.Wait(Options.Grace);
        (int Rank, PeerFailureReason Reason) verdict;
        lock (_gate) verdict = _resolver.Strong ?? _resolver.FollowFrom(suspect, reason);
        Conclude(verdict.Rank, verdict.Reason, inner);
        return Failure!;
    }

    private void Conclude(int culprit, PeerFailureReason reason, Exception? inner)
    {
        lock (_gate)
        {
            if (_failure is not null) { _verdictReady.Set(); return; }
            _failure = new PeerFailedException(culprit, reason, LocalRank, Generation, inner);
            Monitor.PulseAll(_gate);
        }
        foreach (var link in Links.Values) link.TrySendControl(new ControlFrame(ControlKind.Abort, culprit, (byte)reason));
        AbortData();
        _verdictReady.Set();
        _ended.TrySetException(Failure!);
    }

    private void AbortData()
    {
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
        foreach (var link in Links.Values) link.KillData();
    }

    /// <summary>Closes every socket; a collective in progress ends with <see cref="GroupClosedException"/>.</summary>
    public void Dispose()
    {
        bool wasFailed;
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            wasFailed = _failure is not null;
            _failure ??= new GroupClosedException();
            _resolving = true;
            Monitor.PulseAll(_gate);
        }
        if (!wasFailed) foreach (var link in Links.Values) link.TrySendControl(new ControlFrame(ControlKind.Leave, LocalRank, 0));
        AbortData();
        foreach (var link in Links.Values)
        {
            SocketIo.Kill(link.Control);
            link.SharedMemory?.Dispose();
        }
        _registration?.Unregister();
        _verdictReady.Set();
        _strongEvidence.Set();
        _ended.TrySetResult();
    }

    /// <summary>Abrupt close without any goodbye, as if the process had died (tests use it).</summary>
    internal void Crash()
    {
        lock (_gate) { _closed = true; _failure ??= new GroupClosedException(); }
        foreach (var link in Links.Values)
        {
            // Linger 0 sends RST like a killed process would, instead of an orderly FIN.
            try { link.Data.LingerState = new LingerOption(true, 0); } catch (Exception) { }
            SocketIo.Kill(link.Data);
            SocketIo.Kill(link.Control);
            link.SharedMemory?.Dispose();
        }
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
        _registration?.Unregister();
        _verdictReady.Set();
        _ended.TrySetResult();
    }

    /// <summary>Maps a data-path exception to what it says about the peer.</summary>
    public static PeerFailureReason ReasonFor(Exception e) => e switch
    {
        InvalidDataException or FrameIntegrityException => PeerFailureReason.ProtocolError,
        TimeoutException => PeerFailureReason.TimedOut,
        _ when SocketIo.IsTimeout(e) => PeerFailureReason.TimedOut,
        _ => PeerFailureReason.ConnectionLost,
    };

    /// <summary>Each throw gets a fresh exception object so stack traces of different calls don't mix.</summary>
    internal static Exception Rethrowable(Exception f) => f switch
    {
        PeerFailedException p => new PeerFailedException(p.Rank, p.Reason, p.ObservedBy, p.Generation, p.InnerException),
        GroupClosedException => new GroupClosedException(),
        _ => f,
    };
}
