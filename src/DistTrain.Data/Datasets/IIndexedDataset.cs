namespace DistTrain.Data.Datasets;

/// <summary>A dataset read by example index: item i is a pure function of (data, seed, i), so ranks can shard indices.</summary>
public interface IIndexedDataset<out T>
{
    /// <summary>Number of examples.</summary>
    int Count { get; }

    /// <summary>Example <paramref name="index"/> (0 ≤ index &lt; Count); safe to call from several threads.</summary>
    T this[int index] { get; }
}

/// <summary>Builds fixed-size batches from variable-length id arrays (row-major, ready to copy into a tensor).</summary>
public static class Collate
{
    /// <summary>Pads or truncates each row to <paramref name="length"/>; returns rows.Count × length values.</summary>
    public static int[] Pad(IReadOnlyList<int[]> rows, int length, int padValue)
    {
        var batch = new int[rows.Count * length];
        Array.Fill(batch, padValue);
        for (var r = 0; r < rows.Count; r++)
            rows[r].AsSpan(0, Math.Min(length, rows[r].Length)).CopyTo(batch.AsSpan(r * length, length));
        return batch;
    }
}
