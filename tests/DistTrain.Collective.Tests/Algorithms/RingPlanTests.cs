namespace DistTrain.Collective.Tests.Algorithms;

public sealed class RingPlanTests
{
    [Theory]
    [InlineData(0, 3)]
    [InlineData(2, 3)]
    [InlineData(10, 4)]
    [InlineData(1_000_003, 4)]
    public void Chunks_tile_the_bucket_exactly(int length, int world)
    {
        int next = 0;
        for (int c = 0; c < world; c++)
        {
            var (offset, count) = RingPlan.Chunk(length, world, c);
            Assert.Equal(next, offset);
            Assert.InRange(count, length / world, length / world + 1);
            next += count;
        }
        Assert.Equal(length, next);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(5, 3)]
    [InlineData(3, 4)]
    public void Schedule_covers_every_item_once_after_its_predecessor(int buckets, int world)
    {
        var order = RingPlan.Schedule(buckets, world).ToList();
        Assert.Equal(buckets * 2 * (world - 1), order.Distinct().Count());
        Assert.Equal(order.Count, order.Distinct().Count());
        foreach (var (b, s) in order.Where(i => i.Step > 0))
            Assert.True(order.IndexOf((b, s - 1)) < order.IndexOf((b, s)));
        // What the receive side frees (steps 0..last-1) comes in the order the send side needs it (steps 1..last).
        var frees = order.Where(i => i.Step < 2 * (world - 1) - 1).ToList();
        var needs = order.Where(i => i.Step > 0).Select(i => (i.Bucket, i.Step - 1)).ToList();
        Assert.Equal(frees, needs);
    }
}
