using System.Net;
using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>Forms the links of one member: dials some peers, accepts the others through the listener, all with handshakes and one deadline.</summary>
internal static class GroupFormation
{
    /// <summary>Connects to <paramref name="connectTo"/>, accepts from <paramref name="acceptFrom"/>, all within ConnectTimeout.</summary>
    public static async Task<GroupLinks> FormAsync(string jobId, long generation, int localRank, int worldSize, GroupSecret secret,
        IReadOnlyList<(int Rank, EndPoint EndPoint)> connectTo, IReadOnlyList<int> acceptFrom,
        DataPlaneListener? listener, DataPlaneOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var registration = acceptFrom.Count > 0
            ? (listener ?? throw new ArgumentNullException(nameof(listener))).Register(jobId, generation, localRank, worldSize, acceptFrom, secret, options.Integrity)
            : null;
        var deadline = DateTime.UtcNow + options.ConnectTimeout;
        using var formCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        formCts.CancelAfter(options.ConnectTimeout);

        var pending = new List<(int Rank, Channel Channel, Task<(Socket Socket, Session Session)> Task)>();
        foreach (var (rank, ep) in connectTo)
            foreach (var ch in new[] { Channel.Data, Channel.Control })
            {
                var hello = new Hello(jobId, generation, localRank, rank, worldSize, ch, options.Integrity, Proof.NewNonce());
                // A thread of its own: the connect and handshake block, and a pool thread could starve the accepting side.
                pending.Add((rank, ch, Task.Factory.StartNew(() => Connect(ep, hello, secret, deadline, formCts.Token),
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
            foreach (var p in pending) if (p.Task.IsCompletedSuccessfully) Close(p.Task.Result);
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
            var (data, session) = g.Single(p => p.Channel == Channel.Data).Task.Result;
            var (control, controlSession) = g.Single(p => p.Channel == Channel.Control).Task.Result;
            // Control frames are 16-byte notices (suspect, abort, leave), not summed; only the data channel is sealed.
            controlSession.Outgoing?.Dispose();
            controlSession.Incoming?.Dispose();
            ConfigureData(data, options);
            control.SendTimeout = 2000;
            links[g.Key] = new Link(g.Key, data, control, session);
        }
        return new GroupLinks(jobId, generation, localRank, options, links, registration);
    }

    private static void Close((Socket Socket, Session Session) c)
    {
        c.Socket.Dispose();
        c.Session.Outgoing?.Dispose();
        c.Session.Incoming?.Dispose();
    }

    private static void ConfigureData(Socket s, DataPlaneOptions o)
    {
        s.NoDelay = true;
        s.SendTimeout = s.ReceiveTimeout = (int)Math.Min(int.MaxValue, o.IoTimeout.TotalMilliseconds);
        if (o.SocketBufferBytes > 0) s.SendBufferSize = s.ReceiveBufferSize = o.SocketBufferBytes;
    }

    /// <summary>Synchronous connect + handshake with retries (keeps the socket in true blocking mode).</summary>
    private static (Socket, Session) Connect(EndPoint ep, Hello hello, GroupSecret secret, DateTime deadline, CancellationToken ct)
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
                    if (status == HandshakeStatus.Accepted)
                    {
                        socket.SendTimeout = socket.ReceiveTimeout;
                        try { return (socket, Proof.Connect(socket, helloBytes, secret, hello.Integrity, hello.ToRank, theirs)); }
                        catch (HandshakeRejectedException) { socket.Dispose(); throw; }
                    }
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

}
