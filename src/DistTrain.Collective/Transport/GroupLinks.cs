using System.Net;
using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>One remote member: a blocking data socket for payload and a control socket for failure notices.</summary>
internal sealed class Link(int rank, Socket data, Socket control)
{
    private readonly object _controlSend = new();
    public int Rank { get; } = rank;
    public Socket Data { get; } = data;
    public Socket Control { get; } = control;

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

    private GroupLinks(string jobId, long generation, int localRank, DataPlaneOptions options,
        IReadOnlyDictionary<int, Link> links, DataPlaneListener.Registration? registration)
    {
        JobId = jobId;
        Generation = generation;
        LocalRank = localRank;
        Options = options;
        Links = links;
        _registration = registration;
        foreach (var link in links.Values) _ = Task.Run(() => ReadControlAsync(link));
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
            Finalize(rank, PeerFailureReason.Left, null);
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

    /// <summary>Connects to <paramref name="connectTo"/>, accepts from <paramref name="acceptFrom"/>, all within ConnectTimeout.</summary>
    public static async Task<GroupLinks> FormAsync(string jobId, long generation, int localRank, int worldSize,
        IReadOnlyList<(int Rank, EndPoint EndPoint)> connectTo, IReadOnlyList<int> acceptFrom,
        DataPlaneListener? listener, DataPlaneOptions options, CancellationToken ct)
    {
        var registration = acceptFrom.Count > 0
            ? (listener ?? throw new ArgumentNullException(nameof(listener))).Register(jobId, generation, localRank, worldSize, acceptFrom)
            : null;
        var deadline = DateTime.UtcNow + options.ConnectTimeout;
        using var formCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        formCts.CancelAfter(options.ConnectTimeout);

        var pending = new List<(int Rank, Channel Channel, Task<Socket> Task)>();
        foreach (var (rank, ep) in connectTo)
            foreach (var ch in new[] { Channel.Data, Channel.Control })
            {
                var hello = new Hello(jobId, generation, localRank, rank, worldSize, ch);
                // A thread of its own: the connect and handshake block, and a pool thread could starve the accepting side.
                pending.Add((rank, ch, Task.Factory.StartNew(() => Connect(ep, hello, deadline, formCts.Token),
                    CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
            }
        foreach (int rank in acceptFrom)
            foreach (var ch in new[] { Channel.Data, Channel.Control })
                pending.Add((rank, ch, registration!.WaitFor(rank, ch).WaitAsync(formCts.Token)));

        // One refusal (wrong generation, unreachable peer) ends the whole formation at once.
        foreach (var p in pending)
            _ = p.Task.ContinueWith(_ => { try { formCts.Cancel(); } catch (ObjectDisposedException) { } },
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        try
        {
            await Task.WhenAll(pending.Select(p => p.Task)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            formCts.Cancel();
            registration?.Unregister();
            foreach (var p in pending) if (p.Task.IsCompletedSuccessfully) p.Task.Result.Dispose();
            ct.ThrowIfCancellationRequested();
            var rejected = pending.Select(p => p.Task.Exception?.InnerException).OfType<HandshakeRejectedException>().FirstOrDefault();
            if (rejected is not null) throw rejected;
            // Blame a link that actually failed, not one cancelled because another failed.
            int missing = pending.OrderByDescending(p => p.Task.Exception?.InnerException is not (null or OperationCanceledException)).First(p => !p.Task.IsCompletedSuccessfully).Rank;
            throw new PeerFailedException(missing, PeerFailureReason.Unreachable, localRank, generation,
                new TimeoutException($"Group not formed within {options.ConnectTimeout}."));
        }

        var links = new Dictionary<int, Link>();
        foreach (var g in pending.GroupBy(p => p.Rank))
        {
            var data = g.Single(p => p.Channel == Channel.Data).Task.Result;
            var control = g.Single(p => p.Channel == Channel.Control).Task.Result;
            ConfigureData(data, options);
            control.SendTimeout = 2000;
            links[g.Key] = new Link(g.Key, data, control);
        }
        return new GroupLinks(jobId, generation, localRank, options, links, registration);
    }

    private static void ConfigureData(Socket s, DataPlaneOptions o)
    {
        s.NoDelay = true;
        s.SendTimeout = s.ReceiveTimeout = (int)Math.Min(int.MaxValue, o.IoTimeout.TotalMilliseconds);
        if (o.SocketBufferBytes > 0) s.SendBufferSize = s.ReceiveBufferSize = o.SocketBufferBytes;
    }

    /// <summary>Synchronous connect + handshake with retries (keeps the socket in true blocking mode).</summary>
    private static Socket Connect(EndPoint ep, Hello hello, DateTime deadline, CancellationToken ct)
    {
        var helloBytes = hello.Encode();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var socket = ep is IPEndPoint ip ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                                             : new Socket(SocketType.Stream, ProtocolType.Tcp);
            // Dispose is what interrupts a blocking Connect when the deadline passes or the caller gives up.
            using (ct.Register(socket.Dispose))
            {
                try
                {
                    socket.NoDelay = true;
                    socket.Connect(ep);
                    socket.ReceiveTimeout = Math.Max(1, (int)(deadline - DateTime.UtcNow).TotalMilliseconds);
                    SocketIo.SendExact(socket, helloBytes);
                    var ack = new byte[9];
                    SocketIo.ReceiveExact(socket, ack);
                    var status = (HandshakeStatus)ack[0];
                    long theirs = BitConverter.ToInt64(ack, 1);
                    if (status == HandshakeStatus.Accepted) return socket;
                    socket.Dispose();
                    // Retry while the other side's group is still forming or still on the previous generation.
                    if (status is not (HandshakeStatus.FutureGeneration or HandshakeStatus.NoGroup))
                        throw new HandshakeRejectedException(status, hello.ToRank, theirs);
                }
                catch (Exception e) when (e is SocketException or EndOfStreamException or ObjectDisposedException)
                {
                    socket.Dispose();
                }
            }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"No connection to {PeerFailedException.Describe(hello.ToRank)} at {ep}.");
            // A retry backoff, not synchronisation: the peer's listener is up but its group may not be yet.
            ct.WaitHandle.WaitOne(50);
        }
    }

    private async Task ReadControlAsync(Link link)
    {
        var buf = new byte[ControlFrame.Size];
        try
        {
            while (true)
            {
                await SocketIo.ReceiveExactAsync(link.Control, buf, CancellationToken.None).ConfigureAwait(false);
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
        if (finalizeNow) Finalize(rank, reason, null);
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

        foreach (var link in Links.Values) link.TrySendControl(new ControlFrame(ControlKind.Suspect, suspect, (byte)reason));
        // Unblock our other data threads now; the verdict only needs the control channels.
        AbortData();
        _strongEvidence.Wait(Options.Grace);
        (int Rank, PeerFailureReason Reason) verdict;
        lock (_gate) verdict = _resolver.Strong ?? _resolver.FollowFrom(suspect, reason);
        Finalize(verdict.Rank, verdict.Reason, inner);
        return Failure!;
    }

    private void Finalize(int culprit, PeerFailureReason reason, Exception? inner)
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
        foreach (var link in Links.Values) SocketIo.Kill(link.Data);
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
        foreach (var link in Links.Values) SocketIo.Kill(link.Control);
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
        }
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
        _registration?.Unregister();
        _verdictReady.Set();
        _ended.TrySetResult();
    }

    /// <summary>Maps a data-path exception to what it says about the peer.</summary>
    public static PeerFailureReason ReasonFor(Exception e) => e switch
    {
        InvalidDataException => PeerFailureReason.ProtocolError,
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
