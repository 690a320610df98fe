using System.Net;
using DistTrain.Collective.Wire;

namespace DistTrain.Collective.Tests;

/// <summary>N ranks in this process, each with its own listener and group on 127.0.0.1 (plus the reducer in coordinator mode).</summary>
internal sealed class LocalCluster : IDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>A fixed group secret for tests (bytes 1..32), as the coordinator would hand out.</summary>
    public static readonly GroupSecret Secret = new(Enumerable.Range(1, GroupSecret.Size).Select(i => (byte)i).ToArray());

    /// <summary>A member's spec holding <see cref="Secret"/> unless told otherwise.</summary>
    public static GroupSpec Spec(string job, long generation, int rank, int world, IReadOnlyList<EndPoint> peers,
        AllReduceAlgorithm algorithm = AllReduceAlgorithm.Ring, EndPoint? reducer = null, GroupSecret? secret = null) =>
        new(job, generation, rank, world, peers, algorithm, reducer) { Secret = secret ?? Secret };

    public required DataPlaneListener[] Listeners { get; init; }
    public required ProcessGroup[] Groups { get; init; }
    public DataPlaneListener? ReducerListener { get; init; }
    public CoordinatorReducer? Reducer { get; init; }

    public static async Task<LocalCluster> StartAsync(int world, AllReduceAlgorithm algorithm, DataPlaneOptions options,
        long generation = 1, string job = "test-job")
    {
        var listeners = Enumerable.Range(0, world).Select(_ => DataPlaneListener.Start(IPAddress.Loopback)).ToArray();
        var reducerListener = algorithm == AllReduceAlgorithm.Coordinator ? DataPlaneListener.Start(IPAddress.Loopback) : null;
        var reducerTask = reducerListener is null ? null
            : CoordinatorReducer.StartAsync(new ReducerSpec(job, generation, world, Secret), reducerListener, options);
        var peers = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var groups = await Task.WhenAll(Enumerable.Range(0, world).Select(r => ProcessGroup.ConnectAsync(
            Spec(job, generation, r, world, peers, algorithm, reducerListener?.EndPoint), listeners[r], options)))
            .WaitAsync(Bound);
        var reducer = reducerTask is null ? null : await reducerTask.WaitAsync(Bound);
        return new LocalCluster { Listeners = listeners, Groups = groups, ReducerListener = reducerListener, Reducer = reducer };
    }

    /// <summary>Runs AllReduce on every rank at once, each on its own thread as a device thread would.</summary>
    public Task<AllReduceStats>[] RunAll(float[][] buffers, params int[] skipRanks) =>
        Enumerable.Range(0, Groups.Length).Where(r => !skipRanks.Contains(r))
            .Select(r => Task.Factory.StartNew(() => Groups[r].AllReduce(buffers[r]), TaskCreationOptions.LongRunning))
            .ToArray();

    public async Task<AllReduceStats[]> AllReduceAsync(float[][] buffers) => await Task.WhenAll(RunAll(buffers)).WaitAsync(Bound);

    public void Dispose()
    {
        foreach (var g in Groups) g.Dispose();
        Reducer?.Dispose();
        foreach (var l in Listeners) l.Dispose();
        ReducerListener?.Dispose();
    }

    /// <summary>Fixed-seed values spread over several binades, so summation order shows in the low bits.</summary>
    public static float[][] RandomInputs(int world, int length, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, world).Select(_ => Enumerable.Range(0, length)
            .Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-8, 9)))).ToArray()).ToArray();
    }

    /// <summary>The independent reference: a plain left-to-right sum in rank order.</summary>
    public static float[] SequentialSum(float[][] inputs)
    {
        var sum = (float[])inputs[0].Clone();
        for (int r = 1; r < inputs.Length; r++)
            for (int i = 0; i < sum.Length; i++) sum[i] += inputs[r][i];
        return sum;
    }

    /// <summary>Bit-for-bit equality (float equality would call 0 and −0 equal).</summary>
    public static void AssertSameBits(float[] expected, float[] actual) =>
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));

    public static float[][] Copy(float[][] inputs) => inputs.Select(x => (float[])x.Clone()).ToArray();
}
