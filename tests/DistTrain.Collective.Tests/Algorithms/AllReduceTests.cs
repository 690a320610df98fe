using DistTrain.Collective.Wire;

namespace DistTrain.Collective.Tests.Algorithms;

/// <summary>Real sockets on 127.0.0.1, every rank on its own thread, checked against a sequential sum.</summary>
public sealed class AllReduceTests
{
    // Small buckets and segments so a few thousand floats already cross many buckets and pipeline steps.
    private static readonly DataPlaneOptions Small = new() { BucketBytes = 4096, SegmentBytes = 1024, IoTimeout = TimeSpan.FromSeconds(20) };

    public static TheoryData<AllReduceAlgorithm, int, int> Cases()
    {
        var data = new TheoryData<AllReduceAlgorithm, int, int>();
        foreach (var algorithm in new[] { AllReduceAlgorithm.Ring, AllReduceAlgorithm.Coordinator })
            for (int world = 1; world <= 4; world++)
                foreach (int length in new[] { 0, 1, 3, 7, 5_003 }) // 0-length, fewer elements than ranks, not divisible by N
                    data.Add(algorithm, world, length);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Sums_match_a_sequential_sum_and_repeat_bit_for_bit(AllReduceAlgorithm algorithm, int world, int length)
    {
        using var cluster = await LocalCluster.StartAsync(world, algorithm, Small);
        var inputs = LocalCluster.RandomInputs(world, length, seed: 1000 * world + length);
        var expected = LocalCluster.SequentialSum(inputs);

        var first = LocalCluster.Copy(inputs);
        var stats = await cluster.AllReduceAsync(first);
        var second = LocalCluster.Copy(inputs);
        await cluster.AllReduceAsync(second);

        for (int r = 0; r < world; r++)
        {
            LocalCluster.AssertSameBits(first[0], first[r]);   // every rank holds the same bits
            LocalCluster.AssertSameBits(first[r], second[r]);  // and the same bits as the previous run
        }
        if (algorithm == AllReduceAlgorithm.Coordinator)
            LocalCluster.AssertSameBits(expected, first[0]); // rank-order summation is the sequential sum itself
        else
            AssertClose(expected, first[0], inputs, 4 * world * Fp32Roundoff);
        if (world > 1 && length > 0) Assert.All(stats, s => Assert.True(s.BytesSent > 0 && s.BytesReceived > 0 && s.Seconds > 0));
    }

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring, WireFormat.Float32)]
    [InlineData(AllReduceAlgorithm.Ring, WireFormat.BFloat16)]
    [InlineData(AllReduceAlgorithm.Coordinator, WireFormat.Float16)]
    public async Task A_fresh_group_of_the_same_size_reproduces_the_same_bits(AllReduceAlgorithm algorithm, WireFormat wire)
    {
        // Separate groups, sockets and threads: only the fixed reduction order can make the bits agree.
        const int world = 4, length = 9_999;
        var inputs = LocalCluster.RandomInputs(world, length, seed: 21);
        var results = new List<float[]>();
        for (int run = 0; run < 2; run++)
        {
            using var cluster = await LocalCluster.StartAsync(world, algorithm, Small with { Wire = wire }, generation: run + 1);
            var buffers = LocalCluster.Copy(inputs);
            await cluster.AllReduceAsync(buffers);
            results.Add(buffers[run % world]);
        }
        LocalCluster.AssertSameBits(results[0], results[1]);
    }

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring, WireFormat.BFloat16)]
    [InlineData(AllReduceAlgorithm.Ring, WireFormat.Float16)]
    [InlineData(AllReduceAlgorithm.Coordinator, WireFormat.BFloat16)]
    [InlineData(AllReduceAlgorithm.Coordinator, WireFormat.Float16)]
    public async Task Low_precision_wire_stays_within_its_rounding_error(AllReduceAlgorithm algorithm, WireFormat wire)
    {
        const int world = 3, length = 4_099;
        using var cluster = await LocalCluster.StartAsync(world, algorithm, Small with { Wire = wire });
        var inputs = LocalCluster.RandomInputs(world, length, seed: 5);
        var buffers = LocalCluster.Copy(inputs);
        var stats = await cluster.AllReduceAsync(buffers);

        for (int r = 1; r < world; r++) LocalCluster.AssertSameBits(buffers[0], buffers[r]);
        // Each hop rounds once (inputs, partial sums, the result): at most ~N+1 half-ulps of the magnitude sum.
        double halfUlp = wire == WireFormat.BFloat16 ? 1.0 / 256 : 1.0 / 2048;
        AssertClose(LocalCluster.SequentialSum(inputs), buffers[0], inputs, (world + 1) * halfUlp);
        // Half the bytes of fp32 (plus the 32-byte call header).
        long fp32Bytes = algorithm == AllReduceAlgorithm.Ring ? 2L * (world - 1) * length * 4 / world : length * 4L;
        Assert.InRange(stats[0].BytesSent, fp32Bytes / 2 - 16, fp32Bytes / 2 + 64);
    }

    [Theory]
    [InlineData(AllReduceAlgorithm.Ring)]
    [InlineData(AllReduceAlgorithm.Coordinator)]
    public async Task Wire_format_can_be_chosen_per_call(AllReduceAlgorithm algorithm)
    {
        // Gradients in bf16, token counts beside them in fp32: 257 + 1000k needs more than bf16's 8 significant bits.
        const int world = 3;
        using var cluster = await LocalCluster.StartAsync(world, algorithm, Small with { Wire = WireFormat.BFloat16 });
        var counts = Enumerable.Range(0, world).Select(r => Enumerable.Range(0, 10).Select(i => 257f + 1000 * r + i).ToArray()).ToArray();
        var exact = LocalCluster.SequentialSum(counts);
        var buffers = LocalCluster.Copy(counts);
        await Task.WhenAll(Enumerable.Range(0, world).Select(r => Task.Factory.StartNew(
            () => cluster.Groups[r].AllReduce(buffers[r], WireFormat.Float32), TaskCreationOptions.LongRunning))).WaitAsync(LocalCluster.Bound);
        Assert.All(buffers, b => Assert.Equal(exact, b));
        // The group's own default still applies to the next call.
        var rounded = LocalCluster.Copy(counts);
        await cluster.AllReduceAsync(rounded);
        Assert.NotEqual(exact, rounded[0]);
    }

    [Fact]
    public async Task A_rank_that_runs_zero_length_calls_ahead_of_the_others_does_not_break_the_reducer()
    {
        // A zero-length call waits for no sums, so rank 0 can finish three of them before the others start one; its
        // later headers then queue behind the first (in CI on 2026-12-04 the reducer compared rank 0's later header
        // with rank 1's first and failed the group).
        const int world = 3, ahead = 3, length = 5_003;
        using var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Coordinator, Small);
        await Task.Factory.StartNew(() => { for (int call = 0; call < ahead; call++) cluster.Groups[0].AllReduce(Span<float>.Empty); },
            TaskCreationOptions.LongRunning).WaitAsync(LocalCluster.Bound);
        await Task.WhenAll(Enumerable.Range(1, world - 1).Select(r => Task.Factory.StartNew(() =>
            { for (int call = 0; call < ahead; call++) cluster.Groups[r].AllReduce(Span<float>.Empty); },
            TaskCreationOptions.LongRunning))).WaitAsync(LocalCluster.Bound);

        var inputs = LocalCluster.RandomInputs(world, length, seed: 77);
        var buffers = LocalCluster.Copy(inputs);
        await cluster.AllReduceAsync(buffers);
        for (int r = 0; r < world; r++) LocalCluster.AssertSameBits(LocalCluster.SequentialSum(inputs), buffers[r]);
        Assert.Equal(ahead + 1, cluster.Reducer!.Steps);
    }

    [Fact]
    public async Task Large_buffer_with_default_buckets_is_exact_enough()
    {
        // 3 MB per rank crosses real bucket and segment sizes (default 4 MB buckets would make it one bucket).
        const int world = 3, length = 786_433;
        using var cluster = await LocalCluster.StartAsync(world, AllReduceAlgorithm.Ring, new DataPlaneOptions { BucketBytes = 1 << 20, SegmentBytes = 128 << 10 });
        var inputs = LocalCluster.RandomInputs(world, length, seed: 11);
        var buffers = LocalCluster.Copy(inputs);
        await cluster.AllReduceAsync(buffers);
        AssertClose(LocalCluster.SequentialSum(inputs), buffers[2], inputs, 4 * world * Fp32Roundoff);
    }

    private const double Fp32Roundoff = 1.0 / (1 << 24);

    private static void AssertClose(float[] expected, float[] actual, float[][] inputs, double relative)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double magnitude = inputs.Sum(x => Math.Abs((double)x[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * magnitude + 1e-30,
                $"[{i}] expected {expected[i]}, got {actual[i]} (tolerance {relative * magnitude})");
        }
    }
}
