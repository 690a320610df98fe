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
}
