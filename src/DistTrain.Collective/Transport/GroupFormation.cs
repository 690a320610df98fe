using System.Net;
using System.Net.Sockets;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>Forms the links of one member: dials some peers, accepts the others through the listener, all with handshakes and one deadline.</summary>
internal static class GroupFormation
{
    /// <summary>
    /// Connects to <paramref name="connectTo"/>, accepts from <paramref name="acceptFrom"/>, all within ConnectTimeout.
    /// <paramref name="sharedMemoryWith"/> names the peers whose data frames are worth a shared-memory segment (null: all);
    /// links to the others stay on TCP, so a ring maps two segments per member rather than one per peer.
    /// </summary>
    public static async Task<GroupLinks> FormAsync(string jobId, long generation, int localRank, int worldSize, GroupSecret secret,
        IReadOnlyList<(int Rank, EndPoint EndPoint)> connectTo, IReadOnlyList<int> acceptFrom,
        DataPlaneListener? listener, DataPlaneOptions options, CancellationToken ct, Func<int, bool>? sharedMemoryWith = null)
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
        try
        {
            var left = deadline - DateTime.UtcNow;
            await Task.Factory.StartNew(() => NegotiateSharedMemory(localRank, links, options, sharedMemoryWith, left > TimeSpan.Zero ? left : TimeSpan.FromSeconds(1)),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            registration?.Unregister();
            foreach (var link in links.Values)
            {
                link.SharedMemory?.Dispose();
                SocketIo.Kill(link.Data);
                SocketIo.Kill(link.Control);
            }
            var peer = e is LinkNegotiationException n ? n.Rank : links.Keys.First();
            throw new PeerFailedException(peer, PeerFailureReason.Unreachable, localRank, generation, e.InnerException ?? e);
        }
        return new GroupLinks(jobId, generation, localRank, options, links, registration);
    }

    private sealed class LinkNegotiationException(int rank, Exception inner) : Exception(inner.Message, inner)
    {
        public int Rank { get; } = rank;
    }

    /// <summary>
    /// Decides, per link, whether its data frames travel through shared memory, in two sealed frames on the data
    /// connection that both ends always exchange (so the decision cannot diverge): the lower rank offers a fresh segment
    /// (its name and token; or nothing, when it has shared memory off or cannot create one), the higher rank answers
    /// whether it mapped that segment and found the token. Every offer is sent before any answer is awaited, so members
    /// that offer on some links and answer on others never wait on each other in a cycle.
    /// </summary>
    private static void NegotiateSharedMemory(int localRank, Dictionary<int, Link> links, DataPlaneOptions options,
        Func<int, bool>? sharedMemoryWith, TimeSpan timeout)
    {
        const int OfferBytes = 1 + SharedMemoryChannel.IdBytes + SharedMemoryChannel.TokenBytes;
        bool enabled = options.SharedMemory && SharedMemoryChannel.Supported;
        bool Usable(int peer) => enabled && (sharedMemoryWith?.Invoke(peer) ?? true);
        var offered = new Dictionary<int, SharedMemoryChannel>();
        void OnLink(Link link, Action act)
        {
            try { act(); }
            catch (Exception e) { throw new LinkNegotiationException(link.Rank, e); }
        }
        foreach (var saved in links.Values) saved.Data.ReceiveTimeout = saved.Data.SendTimeout = Math.Max(1, (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds));
        try
        {
            foreach (var link in links.Values.Where(l => localRank < l.Rank))
                OnLink(link, () =>
                {
                    var offer = new byte[OfferBytes];
                    if (Usable(link.Rank))
                    {
                        try
                        {
                            var channel = SharedMemoryChannel.Create(options.SharedMemoryDirectory, options.IoTimeout, out var id, out var token);
                            offered[link.Rank] = channel;
                            offer[0] = 1;
                            id.CopyTo(offer, 1);
                            token.CopyTo(offer, 1 + SharedMemoryChannel.IdBytes);
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* no room or no tmpfs here: TCP */ }
                    }
                    link.SendFrame(offer);
                });
            foreach (var link in links.Values.Where(l => localRank > l.Rank))
                OnLink(link, () =>
                {
                    var offer = new byte[OfferBytes];
                    link.ReceiveFrame(offer);
                    SharedMemoryChannel? channel = null;
                    if (Usable(link.Rank) && offer[0] == 1)
                        channel = SharedMemoryChannel.Open(options.SharedMemoryDirectory, offer[1..(1 + SharedMemoryChannel.IdBytes)],
                            offer[(1 + SharedMemoryChannel.IdBytes)..], options.IoTimeout);
                    link.SendFrame([channel is null ? (byte)0 : (byte)1]);
                    if (channel is not null) link.UseSharedMemory(channel);
                });
            foreach (var link in links.Values.Where(l => localRank < l.Rank))
                OnLink(link, () =>
                {
                    var answer = new byte[1];
                    link.ReceiveFrame(answer);
                    if (!offered.Remove(link.Rank, out var channel)) return;
                    channel.Unlink();   // both ends have it mapped (or never will): the name is no longer needed
                    if (answer[0] == 1) link.UseSharedMemory(channel);
                    else channel.Dispose();
                });
        }
        finally
        {
            foreach (var channel in offered.Values) channel.Dispose();
            var io = Math.Max(1, (int)Math.Min(int.MaxValue, options.IoTimeout.TotalMilliseconds));
            foreach (var link in links.Values) link.Data.ReceiveTimeout = link.Data.SendTimeout = io;
        }
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
