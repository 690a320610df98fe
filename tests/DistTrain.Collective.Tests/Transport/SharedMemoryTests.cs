using System.Diagnostics;
using System.Net;
using Xunit;

namespace DistTrain.Collective.Tests;

/// <summary>
/// Links between members that share a tmpfs carry their frames through <see cref="SharedMemoryChannel"/>: the sums
/// are the ring's (or the reducer's) bit for bit, no segment file outlives formation, a member that cannot see the
/// segment (another host or pod) or has it off falls back to TCP, and closing or crashing one side ends the other's
/// blocked call at once instead of at its IoTimeout.
/// </summary>
public sealed class SharedMemoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(),
        "disttrain-test-" + Guid.NewGuid().ToString("N"))).FullName;

    private DataPlaneOptions Options(bool shared = true, string? dir = null) => new()
    {
        BucketBytes = 1 << 20, SegmentBytes = 128 << 10, IoTimeout = TimeSpan.FromSeconds(20),
        FailureGrace = TimeSpan.FromMilliseconds(300), SharedMemory = shared, SharedMemoryDirectory = dir ?? _dir,
    };

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Ring_over_shared_memory_gives_the_same_bits_as_over_tcp(int world)
    {
        // Larger than one ring (4 MiB per direction), so writers wait for room and readers for data.
        const int length = 3_000_001;
        var inputs = LocalCluster.RandomInputs(world, length, seed: 5);
        var overShm = LocalCluster.Copy(inputs);
        var overTcp = LocalCluster.Copy(inputs);
        using (var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Ring, Options()))
        {
            foreach (var g in cluster.Groups) Assert.All(g.Transports.Values, t => Assert.Equal("shm", t));
            Assert.Empty(Directory.GetFiles(_dir));   // unlinked once both ends mapped it
            await cluster.AllReduceAsync(overShm);
            await cluster.AllReduceAsync(LocalCluster.Copy(inputs));   // a second call on the same rings
        }
        using (var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Ring, Options(shared: false)))
        {
            foreach (var g in cluster.Groups) Assert.All(g.Transports.Values, t => Assert.Equal("tcp", t));
            await cluster.AllReduceAsync(overTcp);
        }
        for (int r = 0; r < world; r++) LocalCluster.AssertSameBits(overTcp[r], overShm[r]);
        var reference = LocalCluster.SequentialSum(inputs);
        for (int i = 0; i < length; i += 9973)
            Assert.True(Math.Abs(reference[i] - overShm[0][i]) <= 1e-5 * (1 + Math.Abs(reference[i])), $"[{i}] {reference[i]} vs {overShm[0][i]}");
    }

    [Fact]
    public async Task Values_split_by_the_rings_wrap_around_are_summed_like_any_other()
    {
        // A bf16 call of odd length leaves the rings' cursors 2 bytes off a float boundary, so the next fp32 calls,
        // larger than a ring, meet values that straddle the wrap-around; the sums must equal TCP's bit for bit.
        const int world = 2, odd = 1001, length = 2_500_003;
        var results = new List<float[][]>();
        foreach (bool shared in new[] { true, false })
        {
            using var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Ring, Options(shared));
            var small = LocalCluster.Copy(LocalCluster.RandomInputs(world, odd, seed: 21));
            await Task.WhenAll(cluster.Groups.Select((g, r) => Task.Factory.StartNew(() => g.AllReduce(small[r], DistTrain.Collective.Wire.WireFormat.BFloat16), TaskCreationOptions.LongRunning)))
                .WaitAsync(LocalCluster.Bound);
            var buffers = LocalCluster.Copy(LocalCluster.RandomInputs(world, length, seed: 22));
            await cluster.AllReduceAsync(buffers);
            await cluster.AllReduceAsync(buffers);
            results.Add(buffers);
        }
        for (int r = 0; r < world; r++) LocalCluster.AssertSameBits(results[1][r], results[0][r]);
    }

    [Fact]
    public async Task Coordinator_mode_over_shared_memory_sums_in_rank_order()
    {
        const int world = 3, length = 1_500_000;
        using var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Coordinator, Options());
        foreach (var g in cluster.Groups) Assert.Equal("shm", g.Transports[GroupSpec.ReducerRank]);
        var inputs = LocalCluster.RandomInputs(world, length, seed: 8);
        var buffers = LocalCluster.Copy(inputs);
        await cluster.AllReduceAsync(buffers);
        var expected = LocalCluster.SequentialSum(inputs);
        for (int r = 0; r < world; r++) LocalCluster.AssertSameBits(expected, buffers[r]);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public async Task Only_a_rings_neighbours_share_a_segment()
    {
        // World 4: ranks 0 and 2 (and 1 and 3) are linked for control notices but never exchange ring data.
        var inputs = LocalCluster.RandomInputs(4, 100_003, seed: 9);
        var expected = LocalCluster.Copy(inputs);
        using (var tcp = await LocalCluster.StartAsync(4, AllReduceAlgorithm.Ring, Options(shared: false)))
            await tcp.AllReduceAsync(expected);
        using var cluster = await LocalCluster.StartAsync(4, AllReduceAlgorithm.Ring, Options());
        for (int r = 0; r < 4; r++)
            foreach (var (peer, transport) in cluster.Groups[r].Transports)
                Assert.Equal((peer - r + 4) % 2 == 1 ? "shm" : "tcp", transport);
        Assert.Empty(Directory.GetFiles(_dir));
        await cluster.AllReduceAsync(inputs);
        for (int r = 0; r < 4; r++) Assert.Equal(expected[r], inputs[r]);
    }

    [Fact]
    public async Task A_member_that_cannot_see_the_segment_falls_back_to_tcp()
    {
        // Two tmpfs directories stand for two pods' own /dev/shm: rank 1 looks where rank 0 did not create.
        var elsewhere = Directory.CreateDirectory(Path.Combine(_dir, "other-pod")).FullName;
        var (groups, listeners) = await Form([Options(), Options(dir: elsewhere)]);
        try
        {
            Assert.Equal("tcp", groups[0].Transports[1]);
            Assert.Equal("tcp", groups[1].Transports[0]);
            Assert.Empty(Directory.GetFiles(_dir));      // rank 0 removed the segment nobody mapped
            Assert.Empty(Directory.GetFiles(elsewhere));
            await AssertSums(groups, seed: 3);
        }
        finally { Close(groups, listeners); }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task Either_end_turning_it_off_keeps_the_link_on_tcp(int offRank)
    {
        var (groups, listeners) = await Form([Options(shared: offRank != 0), Options(shared: offRank != 1)]);
        try
        {
            Assert.Equal("tcp", groups[0].Transports[1]);
            Assert.Equal("tcp", groups[1].Transports[0]);
            Assert.Empty(Directory.GetFiles(_dir));
            await AssertSums(groups, seed: 4);
        }
        finally { Close(groups, listeners); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Closing_or_crashing_a_member_ends_the_peers_blocked_call_at_once(bool crash)
    {
        var (groups, listeners) = await Form([Options(), Options()]);
        try
        {
            Assert.Equal("shm", groups[1].Transports[0]);
            var buffer = new float[1 << 20];
            var clock = Stopwatch.StartNew();
            var blocked = Task.Factory.StartNew(() => groups[1].AllReduce(buffer), TaskCreationOptions.LongRunning);
            // Rank 1 has sent its header and waits in the ring for rank 0, which never calls.
            await Task.WhenAny(blocked, Task.Delay(300));
            Assert.False(blocked.IsCompleted);
            if (crash) groups[0].Crash();
            else groups[0].Dispose();
            var error = await Assert.ThrowsAsync<PeerFailedException>(() => blocked.WaitAsync(LocalCluster.Bound));
            Assert.Equal(0, error.Rank);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the peer's call ended only after {clock.Elapsed} (IoTimeout is 20 s)");
        }
        finally { Close(groups, listeners); }
    }

    [Fact]
    public async Task A_silent_peer_times_out_at_the_io_timeout()
    {
        var options = Options() with { IoTimeout = TimeSpan.FromSeconds(2) };
        var (groups, listeners) = await Form([options, options]);
        try
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<PeerFailedException>(() =>
                Task.Factory.StartNew(() => groups[1].AllReduce(new float[1000]), TaskCreationOptions.LongRunning).WaitAsync(LocalCluster.Bound));
            Assert.Equal(PeerFailureReason.TimedOut, error.Reason);
            Assert.InRange(clock.Elapsed.TotalSeconds, 1.5, 15);
        }
        finally { Close(groups, listeners); }
    }

    private static async Task<(ProcessGroup[] Groups, DataPlaneListener[] Listeners)> Form(DataPlaneOptions[] options)
    {
        var listeners = options.Select(_ => DataPlaneListener.Start(IPAddress.Loopback)).ToArray();
        var peers = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var groups = await Task.WhenAll(options.Select((o, r) => ProcessGroup.ConnectAsync(
            LocalCluster.Spec("shm-job", 1, r, options.Length, peers), listeners[r], o))).WaitAsync(LocalCluster.Bound);
        return (groups, listeners);
    }

    private static async Task AssertSums(ProcessGroup[] groups, int seed)
    {
        var inputs = LocalCluster.RandomInputs(groups.Length, 200_000, seed);
        var buffers = LocalCluster.Copy(inputs);
        await Task.WhenAll(groups.Select((g, r) => Task.Factory.StartNew(() => g.AllReduce(buffers[r]), TaskCreationOptions.LongRunning)))
            .WaitAsync(LocalCluster.Bound);
        var expected = LocalCluster.SequentialSum(inputs);
        foreach (var b in buffers) LocalCluster.AssertSameBits(expected, b);   // two ranks: one addition per element
    }

    private static void Close(ProcessGroup[] groups, DataPlaneListener[] listeners)
    {
        foreach (var g in groups) g.Dispose();
        foreach (var l in listeners) l.Dispose();
    }
}
