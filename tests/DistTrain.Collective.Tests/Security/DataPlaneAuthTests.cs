using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective.Tests.Security;

/// <summary>
/// Only holders of the generation's secret get onto the data plane, and altered frames are caught, over real sockets on
/// 127.0.0.1: a rogue client, a member with the wrong secret, and a byte flipped on the way by a proxy.
/// </summary>
public sealed class DataPlaneAuthTests
{
    private static readonly DataPlaneOptions Opts = new()
    {
        BucketBytes = 64 << 10, SegmentBytes = 16 << 10, IoTimeout = TimeSpan.FromSeconds(20),
        FailureGrace = TimeSpan.FromMilliseconds(300), ConnectTimeout = TimeSpan.FromSeconds(20),
        SharedMemory = false,   // the frames must cross the network for the tampering proxy to see them
    };

    /// <summary>A listener whose refusals are kept for the test to read.</summary>
    private static DataPlaneListener Listener(ConcurrentQueue<string> log) => DataPlaneListener.Start(IPAddress.Loopback, log: log.Enqueue);

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring)]
    [InlineData(AllReduceAlgorithm.Coordinator)]
    public async Task A_rogue_client_without_the_secret_is_refused_before_any_byte_is_summed(AllReduceAlgorithm algorithm)
    {
        var log = new ConcurrentQueue<string>();
        using var l0 = Listener(log);
        using var l1 = Listener(log);
        using var lr = Listener(log);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        bool ring = algorithm == AllReduceAlgorithm.Ring;
        var reducerTask = ring ? null : CoordinatorReducer.StartAsync(new ReducerSpec("job", 1, 2, LocalCluster.Secret), lr, Opts);
        // Rank 0 (ring) or the reducer is waiting for rank 1's data connection when the rogue claims to be rank 1.
        var rank0 = ring ? ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 0, 2, peers), l0, Opts) : null;
        var target = ring ? l0.EndPoint : lr.EndPoint;
        int toRank = ring ? 0 : GroupSpec.ReducerRank;

        using var rogue = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000 };
        rogue.Connect(target);
        var rogueAddress = rogue.LocalEndPoint!.ToString()!;
        SocketIo.SendExact(rogue, new Hello("job", 1, 1, toRank, 2, Channel.Data, Opts.Integrity, Proof.NewNonce()).Encode());
        var challenge = new byte[9 + Hello.NonceBytes];
        SocketIo.ReceiveExact(rogue, challenge);
        Assert.Equal(HandshakeStatus.Accepted, (HandshakeStatus)challenge[0]);   // the hello fits: now it must prove the secret
        SocketIo.SendExact(rogue, new byte[Proof.MacBytes]);                       // it cannot
        // It pushes a call header and gradients anyway, hoping they are summed.
        var poison = new byte[CallHeader.Size + 2 * sizeof(float)];
        new CallHeader(0, 2, Opts.BucketBytes / sizeof(float), WireFormat.Float32).Write(poison);
        MemoryMarshal.Cast<byte, float>(poison.AsSpan(CallHeader.Size)).Fill(1e6f);
        try { SocketIo.SendExact(rogue, poison); } catch (SocketException) { }
        var verdict = new byte[9];
        SocketIo.ReceiveExact(rogue, verdict);
        Assert.Equal(HandshakeStatus.BadProof, (HandshakeStatus)verdict[0]);
        Assert.Equal(0, rogue.Receive(new byte[1]));                                // and the connection is closed
        Assert.Contains(log, line => line.Contains(rogueAddress) && line.Contains("did not prove the group secret"));

        // The honest rank 1 still gets its slot, and the group's result is the honest sum.
        var rank1 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 1, 2, peers, algorithm, lr.EndPoint), l1, Opts);
        var rank0b = ring ? null : ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 0, 2, peers, algorithm, lr.EndPoint), l0, Opts);
        var groups = await Task.WhenAll(rank0 ?? rank0b!, rank1).WaitAsync(LocalCluster.Bound);
        using var reducer = reducerTask is null ? null : await reducerTask.WaitAsync(LocalCluster.Bound);
        float[] a = [1, 2], b = [10, 20];
        await Task.WhenAll(Task.Run(() => groups[0].AllReduce(a)), Task.Run(() => groups[1].AllReduce(b))).WaitAsync(LocalCluster.Bound);
        Assert.Equal([11f, 22f], a);
        Assert.Equal(a, b);
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public async Task A_member_with_the_wrong_secret_is_refused_and_logged_and_the_right_one_gets_in()
    {
        var log = new ConcurrentQueue<string>();
        using var l0 = Listener(log);
        using var l1 = Listener(log);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        var rank0 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 3, 0, 2, peers), l0, Opts);
        var wrong = GroupSecret.Generate();   // say, the secret of another job or generation
        var e = await Assert.ThrowsAsync<HandshakeRejectedException>(() =>
            ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 3, 1, 2, peers, secret: wrong), l1, Opts).WaitAsync(LocalCluster.Bound));
        Assert.Equal(HandshakeStatus.BadProof, e.Status);
        Assert.Contains(log, line => line.Contains("claiming rank 1 of job generation 3") && line.Contains("127.0.0.1:")
                                     && line.Contains("did not prove the group secret"));
        // Secrets never reach the log, whichever side's.
        Assert.DoesNotContain(log, line => line.Contains(Convert.ToHexString(wrong.ToBytes())) || line.Contains(Convert.ToBase64String(wrong.ToBytes())));
        Assert.Equal("GroupSecret(redacted)", LocalCluster.Secret.ToString());

        using var g1 = await ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 3, 1, 2, peers), l1, Opts).WaitAsync(LocalCluster.Bound);
        using var g0 = await rank0.WaitAsync(LocalCluster.Bound);
        float[] a = [1], b = [2];
        await Task.WhenAll(Task.Run(() => g0.AllReduce(a)), Task.Run(() => g1.AllReduce(b))).WaitAsync(LocalCluster.Bound);
        Assert.Equal([3f], a);
    }

    [Theory]
    [InlineData(FrameIntegrity.AesGmac)]
    [InlineData(FrameIntegrity.HmacSha256)]
    public async Task A_frame_altered_on_the_way_fails_the_collective_with_an_integrity_error(FrameIntegrity integrity)
    {
        var (rank0, rank1, _) = await ReduceThroughTamperingProxy(Opts with { Integrity = integrity });
        var e = await Assert.ThrowsAsync<PeerFailedException>(() => rank0);
        Assert.Equal((1, PeerFailureReason.ProtocolError), (e.Rank, e.Reason));
        var integrityError = Assert.IsType<FrameIntegrityException>(e.InnerException);
        Assert.Contains("from rank 1 failed its integrity check", integrityError.Message);
        await Assert.ThrowsAsync<PeerFailedException>(() => rank1);
    }

    [Fact]
    public async Task Without_frame_integrity_the_same_flipped_byte_goes_unnoticed()
    {
        // The control for the test above: the proxy really alters a gradient, and only the tag notices.
        var (rank0, rank1, expected) = await ReduceThroughTamperingProxy(Opts with { Integrity = FrameIntegrity.None });
        var sum = await rank0;
        await rank1;
        Assert.NotEqual(expected.Select(BitConverter.SingleToInt32Bits), sum.Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>A ring of two where rank 1 dials rank 0 through a proxy that flips one bit of rank 1's gradient bytes.</summary>
    private static async Task<(Task<float[]> Rank0, Task<float[]> Rank1, float[] HonestSum)> ReduceThroughTamperingProxy(DataPlaneOptions opts)
    {
        var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        var proxy = new FlippingProxy(l0.EndPoint, flipAt: 8192);
        var g0 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 0, 2, [l0.EndPoint, l1.EndPoint]), l0, opts);
        var g1 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 1, 2, [proxy.EndPoint, l1.EndPoint]), l1, opts);
        var groups = await Task.WhenAll(g0, g1).WaitAsync(LocalCluster.Bound);
        var inputs = LocalCluster.RandomInputs(2, 1 << 14, seed: 11);
        var expected = LocalCluster.SequentialSum(inputs);
        Task<float[]> Run(int r) => Task.Factory.StartNew(() =>
        {
            groups[r].AllReduce(inputs[r]);
            return inputs[r];
        }, TaskCreationOptions.LongRunning).WaitAsync(LocalCluster.Bound);
        var r0 = Run(0);
        var r1 = Run(1);
        // Groups close only once both ranks are done: a rank closing early would be (rightly) blamed as a lost peer.
        _ = Task.WhenAll(r0, r1).ContinueWith(_ =>
        {
            foreach (var g in groups) g.Dispose();
            proxy.Dispose();
            l0.Dispose();
            l1.Dispose();
        }, TaskScheduler.Default);
        return (r0, r1, expected);
    }

    /// <summary>Forwards loopback connections to a target, flipping one bit at a fixed offset of each client-to-target stream.</summary>
    private sealed class FlippingProxy : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly List<Socket> _sockets = new();

        public FlippingProxy(IPEndPoint target, long flipAt)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(8);
            new Thread(() =>
            {
                while (true)
                {
                    Socket client;
                    try { client = _listener.Accept(); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                    var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    server.Connect(target);
                    lock (_sockets) _sockets.AddRange([client, server]);
                    new Thread(() => Pump(client, server, flipAt)) { IsBackground = true }.Start();
                    new Thread(() => Pump(server, client, long.MaxValue)) { IsBackground = true }.Start();
                }
            }) { IsBackground = true }.Start();
        }

        public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

        private static void Pump(Socket from, Socket to, long flipAt)
        {
            var buffer = new byte[4096];
            long offset = 0;
            try
            {
                while (true)
                {
                    int n = from.Receive(buffer);
                    if (n == 0) break;
                    if (flipAt >= offset && flipAt < offset + n) buffer[flipAt - offset] ^= 0x10;
                    offset += n;
                    SocketIo.SendExact(to, buffer.AsSpan(0, n));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            SocketIo.Kill(to);
            SocketIo.Kill(from);
        }

        public void Dispose()
        {
            _listener.Dispose();
            lock (_sockets) foreach (var s in _sockets) SocketIo.Kill(s);
        }
    }
}
