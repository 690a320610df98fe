using System.Net;
using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>
/// A rank's (or the reducer's) TCP listener. Start it before the group exists, report <see cref="Port"/>
/// to the control plane, then hand it to <see cref="ProcessGroup.ConnectAsync"/>. It outlives groups: each new
/// generation registers on the same listener, and connections from an older generation are refused. Groups with
/// different ids (several stages, each with its own group) are served side by side, and a connection for a group
/// not registered yet waits (up to the handshake timeout) for its registration. Every connection must prove it holds
/// the generation's <see cref="GroupSecret"/> (<see cref="Proof"/>) before it is handed to a group; a refusal is
/// reported to the listener's log with the peer's address.
/// </summary>
public sealed class DataPlaneListener : IDisposable
{
    private readonly Socket _socket;
    private readonly TimeSpan _handshakeTimeout;
    private readonly object _gate = new();
    private readonly List<(Socket Socket, Hello Hello, byte[] Raw, Timer Expiry)> _parked = new();
    private readonly Dictionary<string, Registration> _current = new(StringComparer.Ordinal);
    private readonly Action<string> _log;
    private volatile bool _disposed;

    private DataPlaneListener(Socket socket, TimeSpan handshakeTimeout, Action<string>? log)
    {
        _socket = socket;
        _handshakeTimeout = handshakeTimeout;
        _log = log ?? (line => Console.Error.WriteLine(line));
        // Accepting and handshaking synchronously keeps the accepted sockets in blocking mode:
        // an async call would switch them to .NET's emulated (slower) blocking for the data path.
        new Thread(AcceptLoop) { IsBackground = true, Name = $"dataplane-accept:{Port}" }.Start();
    }

    /// <summary>Binds <paramref name="address"/>:<paramref name="port"/> (0 = any free port) and starts accepting.</summary>
    /// <param name="log">Where refused connections are reported (peer address and why); standard error by default.</param>
    public static DataPlaneListener Start(IPAddress address, int port = 0, TimeSpan? handshakeTimeout = null, Action<string>? log = null)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new DataPlaneListener(socket, handshakeTimeout ?? TimeSpan.FromSeconds(10), log);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;
    public int Port => EndPoint.Port;

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket accepted;
            try { accepted = _socket.Accept(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { if (_disposed) return; continue; }
            // Blocking handshakes get their own short-lived thread so they never wait for the thread pool to grow.
            new Thread(() => Handshake(accepted)) { IsBackground = true, Name = "dataplane-handshake" }.Start();
        }
    }

    private void Handshake(Socket socket)
    {
        Hello hello;
        byte[] raw;
        try
        {
            socket.NoDelay = true;
            socket.ReceiveTimeout = socket.SendTimeout = (int)_handshakeTimeout.TotalMilliseconds;
            hello = Hello.Read(socket, out raw);
        }
        catch (Exception)
        {
            // Port scanners, health probes and half-open leftovers just get closed.
            socket.Dispose();
            return;
        }

        Registration? reg;
        lock (_gate)
        {
            if (!_current.TryGetValue(hello.JobId, out reg))
            {
                // The peer was faster than our own group formation: park it until its group registers.
                _parked.Add((socket, hello, raw, new Timer(_ => ExpireParked(socket), null, _handshakeTimeout, Timeout.InfiniteTimeSpan)));
                return;
            }
        }
        Admit(reg, socket, hello, raw);
    }

    private void ExpireParked(Socket socket)
    {
        lock (_gate)
        {
            int i = _parked.FindIndex(p => p.Socket == socket);
            if (i < 0) return;
            _parked[i].Expiry.Dispose();
            _parked.RemoveAt(i);
        }
        Reject(socket, HandshakeStatus.NoGroup, -1);
    }

    // Outside _gate: the proof exchange waits on the peer (up to the handshake timeout), and must not stall other groups.
    private void Admit(Registration reg, Socket socket, Hello hello, byte[] raw)
    {
        var status = reg.Check(hello);
        if (status != HandshakeStatus.Accepted)
        {
            Reject(socket, status, reg.Generation);
            return;
        }
        EndPoint? peer = null;
        try
        {
            peer = socket.RemoteEndPoint;
            var session = reg.Prove(socket, raw);
            if (session is null)
            {
                // Nothing this connection sends is ever read again, let alone summed.
                _log($"data plane: refused {peer} claiming rank {hello.FromRank} of {Printable(hello.JobId)} generation {hello.Generation} " +
                     $"({hello.Channel}): it did not prove the group secret");
                Reject(socket, HandshakeStatus.BadProof, reg.Generation);
                return;
            }
            reg.Deliver(socket, hello, session);
        }
        catch (Exception e) when (e is SocketException or EndOfStreamException or ObjectDisposedException or IOException)
        {
            _log($"data plane: refused {peer?.ToString() ?? "a peer"} claiming rank {hello.FromRank} of {Printable(hello.JobId)}: the handshake broke off ({e.Message})");
            socket.Dispose();
        }
    }

    // The job id comes from an unauthenticated peer: no line breaks or escape codes into the log.
    private static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? '?' : c));

    internal static void Reject(Socket socket, HandshakeStatus status, long generation)
    {
        try { socket.Send(Hello.EncodeAck(status, generation)); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        SocketIo.Kill(socket);
    }

    /// <summary>
    /// Makes this listener serve one generation of group <paramref name="jobId"/>. A newer generation supersedes an
    /// older one still registered (its group may not be disposed yet): from then on the old generation's late
    /// connections are refused as stale. Other groups are unaffected.
    /// </summary>
    internal Registration Register(string jobId, long generation, int localRank, int worldSize, IEnumerable<int> expectedRanks,
        GroupSecret secret, FrameIntegrity integrity)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var reg = new Registration(this, jobId, generation, localRank, worldSize, expectedRanks, secret, integrity);
        lock (_gate)
        {
            if (_current.TryGetValue(jobId, out var old))
            {
                if (generation <= old.Generation)
                    throw new InvalidOperationException($"The listener already serves generation {old.Generation} of {jobId}; a group needs a newer one.");
                old.CancelPending();
            }
            _current[jobId] = reg;
            foreach (var parked in _parked.Where(p => p.Hello.JobId == jobId).ToList())
            {
                parked.Expiry.Dispose();
                _parked.Remove(parked);
                new Thread(() => Admit(reg, parked.Socket, parked.Hello, parked.Raw)) { IsBackground = true, Name = "dataplane-handshake" }.Start();
            }
        }
        return reg;
    }

    internal void Unregister(Registration reg)
    {
        lock (_gate) if (_current.TryGetValue(reg.JobId, out var current) && current == reg) _current.Remove(reg.JobId);
        reg.CancelPending();
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
        lock (_gate)
        {
            foreach (var (socket, _, _, expiry) in _parked)
            {
                expiry.Dispose();
                socket.Dispose();
            }
            _parked.Clear();
        }
        List<Registration> registered;
        lock (_gate) registered = _current.Values.ToList();
        foreach (var reg in registered) reg.CancelPending();
    }

    /// <summary>The connections one group member is waiting for, keyed by (remote rank, channel).</summary>
    internal sealed class Registration
    {
        private readonly DataPlaneListener _owner;
        private readonly string _jobId;
        private readonly int _localRank, _worldSize;
        private readonly GroupSecret _secret;
        private readonly FrameIntegrity _integrity;
        private readonly Dictionary<(int, Channel), TaskCompletionSource<(Socket, Session)>> _slots = new();

        public Registration(DataPlaneListener owner, string jobId, long generation, int localRank, int worldSize, IEnumerable<int> expected,
            GroupSecret secret, FrameIntegrity integrity)
        {
            _secret = secret;
            _integrity = integrity;
            _owner = owner;
            _jobId = jobId;
            Generation = generation;
            _localRank = localRank;
            _worldSize = worldSize;
            foreach (int r in expected)
                foreach (var ch in new[] { Channel.Data, Channel.Control })
                    _slots[(r, ch)] = new TaskCompletionSource<(Socket, Session)>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public long Generation { get; }
        public string JobId => _jobId;

        public HandshakeStatus Check(Hello h)
        {
            if (h.JobId != _jobId) return HandshakeStatus.WrongJob;
            if (h.Generation < Generation) return HandshakeStatus.StaleGeneration;
            if (h.Generation > Generation) return HandshakeStatus.FutureGeneration;
            if (h.ToRank != _localRank || h.WorldSize != _worldSize || !_slots.TryGetValue((h.FromRank, h.Channel), out var slot))
                return HandshakeStatus.BadMember;
            if (h.Integrity != _integrity) return HandshakeStatus.IntegrityMismatch;
            return slot.Task.IsCompleted ? HandshakeStatus.Duplicate : HandshakeStatus.Accepted;
        }

        /// <summary>Runs the acceptor's half of the proof; null when the peer does not hold the secret.</summary>
        public Session? Prove(Socket socket, byte[] helloBytes) => Proof.Accept(socket, helloBytes, _secret, _integrity, Generation);

        public void Deliver(Socket socket, Hello h, Session session)
        {
            if (!_slots[(h.FromRank, h.Channel)].TrySetResult((socket, session))) socket.Dispose();
        }

        public Task<(Socket Socket, Session Session)> WaitFor(int rank, Channel channel) => _slots[(rank, channel)].Task;

        public void CancelPending()
        {
            // Sockets already delivered belong to the group, which disposes them.
            foreach (var slot in _slots.Values) slot.TrySetCanceled();
        }

        public void Unregister() => _owner.Unregister(this);
    }
}
