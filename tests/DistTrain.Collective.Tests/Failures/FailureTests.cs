using System.Diagnostics;
using System.Net;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective.Tests.Failures;

/// <summary>Dead, silent and stale peers end collectives fast, naming the right rank; nothing hangs.</summary>
public sealed class FailureTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly DataPlaneOptions Opts = new()
    {
        BucketBytes = 64 << 10, SegmentBytes = 16 << 10, IoTimeout = TimeSpan.FromSeconds(20), FailureGrace = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>Waits (bounded) until every listed rank has started pushing bytes, i.e. is inside the collective.</summary>
    private static void WaitUntilSending(LocalCluster c, IEnumerable<int> ranks) =>
        Assert.True(SpinWait.SpinUntil(() => ranks.All(r => c.Groups[r].BytesSent > 0), LocalCluster.Bound), "ranks never started");

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring, 4, 2)]
    [InlineData(AllReduceAlgorithm.Ring, 3, 0)]
    [InlineData(AllReduceAlgorithm.Coordinator, 3, 1)]
    public async Task A_peer_that_dies_mid_collective_is_named_by_everyone_well_before_the_timeout(AllReduceAlgorithm algorithm, int world, int victim)
    {
        using var cluster = await LocalCluster.StartAsync(world, algorithm, Opts);
        var buffers = LocalCluster.RandomInputs(world, 1 << 20, seed: 3);
        // The victim never joins, so the others are stuck inside the collective until it dies.
        var others = Enumerable.Range(0, world).Where(r => r != victim).ToArray();
        var tasks = cluster.RunAll(buffers, victim);
        WaitUntilSending(cluster, others);

        var clock = Stopwatch.StartNew();
        cluster.Groups[victim].Crash();
        foreach (var t in tasks)
        {
            var e = await Assert.ThrowsAsync<PeerFailedException>(() => t.WaitAsync(LocalCluster.Bound));
            Assert.Equal(victim, e.Rank);
        }
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(900), $"took {clock.Elapsed}");
        if (cluster.Reducer is not null)
            Assert.Equal(victim, (await Assert.ThrowsAsync<PeerFailedException>(() => cluster.Reducer.Completion.WaitAsync(LocalCluster.Bound))).Rank);
    }

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring)]
    [InlineData(AllReduceAlgorithm.Coordinator)]
    public async Task A_silent_peer_fails_the_others_after_the_io_timeout_naming_it(AllReduceAlgorithm algorithm)
    {
        const int world = 4, silent = 2;
        var opts = Opts with { IoTimeout = TimeSpan.FromSeconds(1) };
        using var cluster = await LocalCluster.StartAsync(world, algorithm, opts);
        var buffers = LocalCluster.RandomInputs(world, 1 << 16, seed: 4);
        var clock = Stopwatch.StartNew();
        var tasks = cluster.RunAll(buffers, silent);   // rank 2 is alive but never calls
        foreach (var t in tasks)
        {
            var e = await Assert.ThrowsAsync<PeerFailedException>(() => t.WaitAsync(LocalCluster.Bound));
            output.WriteLine($"{clock.Elapsed}: {e.Message}");
            Assert.Equal(silent, e.Rank);
        }
        Assert.InRange(clock.Elapsed, opts.IoTimeout * 0.9, opts.IoTimeout * 5);

    }

    [Fact]
    public async Task The_reducer_dying_is_named_by_every_worker()
    {
        using var cluster = await LocalCluster.StartAsync(2, AllReduceAlgorithm.Coordinator, Opts);
        var buffers = LocalCluster.RandomInputs(2, 1 << 20, seed: 5);
        var tasks = cluster.RunAll(buffers);
        WaitUntilSending(cluster, [0, 1]);
        cluster.Reducer!.Crash();
        foreach (var t in tasks)
        {
            var e = await Assert.ThrowsAsync<PeerFailedException>(() => t.WaitAsync(LocalCluster.Bound));
            Assert.Equal(GroupSpec.ReducerRank, e.Rank);
        }
    }

    [Fact]
    public async Task Closing_a_group_unblocks_its_collective_at_once_and_later_calls_fail_fast()
    {
        using var cluster = await LocalCluster.StartAsync(3, AllReduceAlgorithm.Ring, Opts);
        var buffers = LocalCluster.RandomInputs(3, 1 << 20, seed: 6);
        var tasks = cluster.RunAll(buffers, 2);
        WaitUntilSending(cluster, [0, 1]);
        var clock = Stopwatch.StartNew();
        cluster.Groups[0].Dispose();
        await Assert.ThrowsAsync<GroupClosedException>(() => tasks[0].WaitAsync(LocalCluster.Bound));
        // Rank 1 learns that rank 0 left.
        Assert.Equal(0, (await Assert.ThrowsAsync<PeerFailedException>(() => tasks[1].WaitAsync(LocalCluster.Bound))).Rank);
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(900), $"took {clock.Elapsed}");
        Assert.Throws<GroupClosedException>(() => cluster.Groups[0].AllReduce(buffers[0]));
        Assert.Throws<PeerFailedException>(() => cluster.Groups[1].AllReduce(buffers[1]));
    }

    [Fact]
    public async Task A_connection_from_a_stale_generation_is_rejected_and_the_group_still_forms()
    {
        using var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        using var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        var opts = Opts with { ConnectTimeout = TimeSpan.FromSeconds(10) };
        // Rank 0 of generation 7 is waiting for rank 1...
        var rank0 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 7, 0, 2, peers), l0, opts);
        // ...when a leftover rank 1 of generation 6 dials in: it must be refused, not adopted.
        var stale = await Assert.ThrowsAsync<HandshakeRejectedException>(
            () => ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 6, 1, 2, peers), l1, opts).WaitAsync(LocalCluster.Bound));
        Assert.Equal(HandshakeStatus.StaleGeneration, stale.Status);
        Assert.Equal(7, stale.TheirGeneration);
        // A group this listener does not serve is not refused (it may register a moment later, as when one stage
        // follows another on the same workers): it waits, and is named unreachable if its group never comes.
        var unserved = await Assert.ThrowsAsync<PeerFailedException>(() => ProcessGroup.ConnectAsync(
            LocalCluster.Spec("other-job", 7, 1, 2, peers), l1, opts with { ConnectTimeout = TimeSpan.FromSeconds(1) }).WaitAsync(LocalCluster.Bound));
        Assert.Equal(PeerFailureReason.Unreachable, unserved.Reason);

        using var g1 = await ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 7, 1, 2, peers), l1, opts).WaitAsync(LocalCluster.Bound);
        using var g0 = await rank0.WaitAsync(LocalCluster.Bound);
        float[] a = [1, 2], b = [10, 20];
        await Task.WhenAll(Task.Run(() => g0.AllReduce(a)), Task.Run(() => g1.AllReduce(b))).WaitAsync(LocalCluster.Bound);
        Assert.Equal([11f, 22f], a);
        Assert.Equal(a, b);
    }

    [Fact]
    public async Task Two_groups_form_and_reduce_side_by_side_on_the_same_listeners()
    {
        using var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        using var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        // Group b's rank 1 dials in before group b registers on l0: it waits instead of being refused.
        var b1 = ProcessGroup.ConnectAsync(LocalCluster.Spec("job/b", 1, 1, 2, peers), l1, Opts);
        var a = await Task.WhenAll(ProcessGroup.ConnectAsync(LocalCluster.Spec("job/a", 1, 0, 2, peers), l0, Opts),
            ProcessGroup.ConnectAsync(LocalCluster.Spec("job/a", 1, 1, 2, peers), l1, Opts)).WaitAsync(LocalCluster.Bound);
        var b0 = await ProcessGroup.ConnectAsync(LocalCluster.Spec("job/b", 1, 0, 2, peers), l0, Opts).WaitAsync(LocalCluster.Bound);
        var b = new[] { b0, await b1.WaitAsync(LocalCluster.Bound) };
        float[][] xa = [[1, 2], [10, 20]], xb = [[3], [4]];
        await Task.WhenAll(Task.Run(() => a[0].AllReduce(xa[0])), Task.Run(() => a[1].AllReduce(xa[1])),
            Task.Run(() => b[0].AllReduce(xb[0])), Task.Run(() => b[1].AllReduce(xb[1]))).WaitAsync(LocalCluster.Bound);
        Assert.Equal([11f, 22f], xa[0]);
        Assert.Equal(xa[0], xa[1]);
        Assert.Equal([7f], xb[0]);
        Assert.Equal(xb[0], xb[1]);
        foreach (var g in a.Concat(b)) g.Dispose();
    }

    [Fact]
    public async Task A_rank_that_never_connects_is_named_when_formation_times_out()
    {
        using var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        using var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        var opts = Opts with { ConnectTimeout = TimeSpan.FromMilliseconds(500) };
        var e = await Assert.ThrowsAsync<PeerFailedException>(() =>
            ProcessGroup.ConnectAsync(LocalCluster.Spec("job", 1, 0, 2, [l0.EndPoint, l1.EndPoint]), l0, opts).WaitAsync(LocalCluster.Bound));
        Assert.Equal((1, PeerFailureReason.Unreachable), (e.Rank, e.Reason));
    }

    [Fact]
    public async Task A_newer_generation_may_form_before_the_previous_group_is_disposed()
    {
        using var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        using var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        ProcessGroup[] Form(long gen) => Task.WhenAll(
            ProcessGroup.ConnectAsync(LocalCluster.Spec("job", gen, 0, 2, peers), l0, Opts),
            ProcessGroup.ConnectAsync(LocalCluster.Spec("job", gen, 1, 2, peers), l1, Opts)).WaitAsync(LocalCluster.Bound).GetAwaiter().GetResult();
        var old = Form(1);
        var next = Form(2);   // the control plane re-forms before it got round to closing generation 1
        float[] a = [1], b = [2];
        await Task.WhenAll(Task.Run(() => next[0].AllReduce(a)), Task.Run(() => next[1].AllReduce(b))).WaitAsync(LocalCluster.Bound);
        Assert.Equal(3f, a[0]);
        foreach (var g in old.Concat(next)) g.Dispose();
    }

    [Fact]
    public async Task A_listener_serves_the_next_generation_after_the_previous_group_closes()
    {
        using var l0 = DataPlaneListener.Start(IPAddress.Loopback);
        using var l1 = DataPlaneListener.Start(IPAddress.Loopback);
        EndPoint[] peers = [l0.EndPoint, l1.EndPoint];
        for (long gen = 1; gen <= 2; gen++)
        {
            var groups = await Task.WhenAll(
                ProcessGroup.ConnectAsync(LocalCluster.Spec("job", gen, 0, 2, peers), l0, Opts),
                ProcessGroup.ConnectAsync(LocalCluster.Spec("job", gen, 1, 2, peers), l1, Opts)).WaitAsync(LocalCluster.Bound);
            float[] a = [gen], b = [1];
            await Task.WhenAll(Task.Run(() => groups[0].AllReduce(a)), Task.Run(() => groups[1].AllReduce(b))).WaitAsync(LocalCluster.Bound);
            Assert.Equal(gen + 1, a[0]);
            foreach (var g in groups) g.Dispose();
        }
    }
}
