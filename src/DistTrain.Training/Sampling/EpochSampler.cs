using DistTrain.Data;

namespace DistTrain.Training.Sampling;

/// <summary>
/// Exactly-once sampling: each epoch has one deterministic global order (from seed and epoch), consumed in
/// contiguous global batches. The last batch of an epoch is short rather than padded, so every example is
/// trained exactly once per epoch. All state is <see cref="SamplerState"/>, saved in every checkpoint.
/// </summary>
public sealed class EpochSampler
{
    private readonly int _datasetSize;
    private readonly long _seed;
    private int[] _order;
    private int _orderEpoch;

    public EpochSampler(int datasetSize, long seed, SamplerState? state = null)
    {
        if (datasetSize <= 0) throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "dataset is empty");
        _datasetSize = datasetSize;
        _seed = seed;
        State = state ?? SamplerState.Start;
        if (State.Cursor < 0 || State.Cursor > datasetSize)
            throw new ArgumentOutOfRangeException(nameof(state), State, $"cursor outside [0, {datasetSize}]");
        _orderEpoch = State.Epoch;
        _order = Permutation(datasetSize, seed, State.Epoch);
    }

    public SamplerState State { get; private set; }
    public int DatasetSize => _datasetSize;

    /// <summary>Takes the next global batch of up to <paramref name="size"/> examples and advances the state.</summary>
    public GlobalBatch Next(int size)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "batch size must be > 0");
        var (epoch, cursor) = State;
        if (cursor >= _datasetSize) { epoch++; cursor = 0; }
        if (epoch != _orderEpoch) { _order = Permutation(_datasetSize, _seed, epoch); _orderEpoch = epoch; }
        long end = Math.Min(cursor + size, _datasetSize);
        var examples = _order.AsSpan((int)cursor, (int)(end - cursor)).ToArray();
        State = new SamplerState(epoch, end);
        return new GlobalBatch(epoch, cursor, end, examples);
    }

    /// <summary>The global order of an epoch: a seeded Fisher–Yates shuffle, stable across machines and .NET versions.</summary>
    public static int[] Permutation(int n, long seed, int epoch)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        SeededRandom.For((ulong)seed, (ulong)epoch, stream: OrderStream).Shuffle(order);
        return order;
    }

    // Separates the sampler's random stream from the data layer's streams drawn from the same seed.
    private const ulong OrderStream = 0x53414D50;   // "SAMP"
}
