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
}
