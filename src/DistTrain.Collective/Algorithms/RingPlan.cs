namespace DistTrain.Collective;

/// <summary>The fixed cut of a flat buffer into buckets, of buckets into per-rank chunks, and of chunks into segments.</summary>
/// <remarks>Every rank computes the same cut from (length, world, bucket, segment), so payload needs no framing.</remarks>
internal static class RingPlan
{
    public static int BucketCount(int length, int bucketElements) => (length + bucketElements - 1) / bucketElements;

    public static (int Offset, int Length) Bucket(int length, int bucketElements, int b)
    {
        int offset = b * bucketElements;
        return (offset, Math.Min(bucketElements, length - offset));
    }

    /// <summary>Chunk <paramref name="c"/> of a bucket: near-equal parts, the first (len mod n) one element longer.</summary>
    public static (int Offset, int Length) Chunk(int bucketLength, int world, int c)
    {
        int q = bucketLength / world, r = bucketLength % world;
        return (c * q + Math.Min(c, r), q + (c < r ? 1 : 0));
    }

    public static int Mod(int a, int n) => ((a % n) + n) % n;

    /// <summary>The ranks <paramref name="rank"/> receives from (left) and sends to (right): the only peers it exchanges ring data with.</summary>
    public static (int Left, int Right) Neighbours(int rank, int world) => (Mod(rank - 1, world), Mod(rank + 1, world));

    /// <summary>
    /// The order in which (bucket, step) items go over the wire, the same on every rank: by diagonal
    /// bucket + step, then by bucket. Step s of bucket b waits for step s−1 of b, which was received
    /// one diagonal earlier, so while it travels the sender still has the other buckets of its
    /// diagonal to send: the ring pipelines across buckets instead of stalling at every step.
    /// Received items free send items in exactly this order, which is what lets one counter link them.
    /// </summary>
    public static IEnumerable<(int Bucket, int Step)> Schedule(int buckets, int world)
    {
        int steps = 2 * (world - 1);
        for (int t = 0; t < buckets + steps - 1; t++)
            for (int b = Math.Max(0, t - steps + 1); b <= Math.Min(buckets - 1, t); b++)
                yield return (b, t - b);
    }
}
