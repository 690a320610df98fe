using System.Net;
using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>
/// A rank's (or the reducer's) TCP listener. Start it before the group exists, report <see cref="Port"/>
/// to the control plane, then hand it to <see cref="ProcessGroup.ConnectAsync"/>. It outlives groups: each new
/// generation registers on the same listener, and connections from an older generation are refused. Groups with
/// different ids (several stages, each with its own group) are served side by side, and a connection for a group
/// not registered yet waits (up to the handshake timeout) for its registration.
/// </summary>
public sealed class DataPlaneListener : IDisposable
{
    private readonly Socket _socket;
    private readonly TimeSpan _handshakeTimeout;
    private readonly object _gate = new();
    private readonly List<(Socket Socket, Hello Hello, Timer Expiry)> _parked = new();
    private readonly Dictionary<string, Registration> _current = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    private DataPlaneListener(Socket socket, TimeSpan handshakeTimeout)
    {
        _socket = socket;
        _handshakeTimeout = handshakeTimeout;
        // Accepting and handshaking synchronously keeps the accepted sockets in blocking mode:
        // an async call would switch them to .NET's emulated (slower) blocking for the data path.
        new Thread(AcceptLoop) { IsBackground = true, Name = $"dataplane-accept:{Port}" }.Start();
    }

    /// <summary>Binds <paramref name="address"/>:<paramref name="port"/> (0 = any free port) and starts accepting.</summary>
    public static DataPlaneListener Start(IPAddress address, int port = 0, TimeSpan? handshakeTimeout = null)
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
        return new DataPlaneListener(socket, handshakeTimeout ?? TimeSpan.FromSeconds(10));
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
        try
        {
            socket.NoDelay = true;
            socket.ReceiveTimeout = (int)_handshakeTimeout.TotalMilliseconds;
            hello = Hello.Read(socket);
        }
        catch (Exception)
        {
            // Port scanners, health probes and half-open leftovers just get closed.
            socket.Dispose();
            return;
        }

        lock (_gate)
        {
            if (!_current.TryGetValue(hello.JobId, out var reg))
            {
                // The peer was faster than our own group formation: park it until its group registers.
                _parked.Add((socket, hello, new Timer(_ => ExpireParked(socket), null, _handshakeTimeout, Timeout.InfiniteTimeSpan)));
                return;
            }
            Offer(reg, socket, hello);
        }
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

    // Called under _gate.
    private static void Offer(Registration reg, Socket socket, Hello hello)
    {
        var status = reg.Check(hello);
        if (status != HandshakeStatus.Accepted) Reject(socket, status, reg.Generation);
        else reg.Deliver(socket, hello);
    }

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
    internal Registration Register(string jobId, long generation, int localRank, int worldSize, IEnumerable<int> expectedRanks)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var reg = new Registration(this, jobId, generation, localRank, worldSize, expectedRanks);
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
                Offer(reg, parked.Socket, parked.Hello);
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
            foreach (var (socket, _, expiry) in _parked)
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
        private readonly Dictionary<(int, Channel), TaskCompletionSource<Socket>> _slots = new();

        public Registration(DataPlaneListener owner, string jobId, long generation, int localRank, int worldSize, IEnumerable<int> expected)
        {
            _owner = owner;
            _jobId = jobId;
            Generation = generation;
            _localRank = localRank;
            _worldSize = worldSize;
            foreach (int r in expected)
                foreach (var ch in new[] { Channel.Data, Channel.Control })
                    _slots[(r, ch)] = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
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
            return slot.Task.IsCompleted ? HandshakeStatus.Duplicate : HandshakeStatus.Accepted;
        }

        public void Deliver(Socket socket, Hello h)
        {
            try
            {
                socket.Send(Hello.EncodeAck(HandshakeStatus.Accepted, Generation));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                socket.Dispose();
                return; // the connector will retry
            }
            if (!_slots[(h.FromRank, h.Channel)].TrySetResult(socket)) socket.Dispose();
        }

        public Task<Socket> WaitFor(int rank, Channel channel) => _slots[(rank, channel)].Task;

        public void CancelPending()
        {
            // Sockets already delivered belong to the group, which disposes them.
            foreach (var slot in _slots.Values) slot.TrySetCanceled();
        }

        public void Unregister() => _owner.Unregister(this);
    }
}
