namespace DistTrain.Training.Sampling;

/// <summary>The examples of one optimizer step: a contiguous range [Start, End) of one epoch's global order.</summary>
public sealed record GlobalBatch(int Epoch, long Start, long End, IReadOnlyList<int> Examples)
{
    public int Count => Examples.Count;

    /// <summary>
    /// Rank <paramref name="rank"/>'s share: contiguous, sizes differ by at most one, nothing padded or duplicated.
    /// PyTorch's DistributedSampler pads by repeating samples; we give the first (Count mod world) ranks one extra.
    /// </summary>
    public IReadOnlyList<int> ShardFor(int rank, int world)
    {
        var (offset, length) = ShardRange(Count, rank, world);
        return Examples.Skip(offset).Take(length).ToArray();
    }

    /// <summary>Offset and length of rank's contiguous share of <paramref name="count"/> items.</summary>
    public static (int Offset, int Length) ShardRange(int count, int rank, int world)
    {
        if (world <= 0) throw new ArgumentOutOfRangeException(nameof(world), world, "world size must be > 0");
        if (rank < 0 || rank >= world) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {world})");
        int baseSize = count / world, extra = count % world;
        int offset = rank * baseSize + Math.Min(rank, extra);
        return (offset, baseSize + (rank < extra ? 1 : 0));
    }
}
