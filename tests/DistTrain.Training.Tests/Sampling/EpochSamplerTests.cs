using DistTrain.Training.Sampling;

namespace DistTrain.Training.Tests.Sampling;

/// <summary>Exactly-once sharding: no padding, no duplicates, and resume at another world size.</summary>
public sealed class EpochSamplerTests
{
    [Theory]
    [InlineData(10, 1)]
    [InlineData(10, 3)]
    [InlineData(7, 4)]
    [InlineData(3, 5)]
    public void Shards_partition_the_batch_without_padding(int count, int world)
    {
        var batch = new GlobalBatch(0, 0, count, Enumerable.Range(100, count).ToArray());
        var seen = Enumerable.Range(0, world).SelectMany(r => batch.ShardFor(r, world)).ToArray();
        Assert.Equal(batch.Examples, seen);   // contiguous shards in rank order: the batch exactly, once
        var sizes = Enumerable.Range(0, world).Select(r => batch.ShardFor(r, world).Count).ToArray();
        Assert.True(sizes.Max() - sizes.Min() <= 1);
    }

    [Fact]
    public void Each_epoch_is_a_permutation_and_the_last_batch_is_short()
    {
        var sampler = new EpochSampler(datasetSize: 103, seed: 7);
        var epoch0 = new List<int>();
        GlobalBatch b;
        do { b = sampler.Next(10); epoch0.AddRange(b.Examples); } while (b.End < 103);
        Assert.Equal(3, b.Count);                        // 103 = 10·10 + 3: short, not padded
        Assert.Equal(Enumerable.Range(0, 103), epoch0.Order());
        var first1 = sampler.Next(10);
        Assert.Equal(1, first1.Epoch);
        Assert.NotEqual(epoch0.Take(10), first1.Examples);   // a new order each epoch
    }

    [Fact]
    public void Same_seed_same_order_other_seed_other_order()
    {
        Assert.Equal(EpochSampler.Permutation(50, 1, 0), EpochSampler.Permutation(50, 1, 0));
        Assert.NotEqual(EpochSampler.Permutation(50, 1, 0), EpochSampler.Permutation(50, 2, 0));
    }

    [Fact]
    public void Resuming_at_another_world_size_sees_every_example_exactly_once()
    {
        const int n = 997, batch = 32;
        var trained = new List<int>();

        // 3 ranks for 11 steps, then a checkpoint of the sampler state.
        var sampler = new EpochSampler(n, seed: 42);
        for (int step = 0; step < 11; step++)
        {
            var gb = sampler.Next(batch);
            for (int r = 0; r < 3; r++) trained.AddRange(gb.ShardFor(r, 3));
        }
        var saved = sampler.State;

        // Steps 11–13 ran on 3 ranks but were rolled back (a rank died): they are not recorded.
        for (int step = 11; step < 14; step++) sampler.Next(batch);

        // Resume from the checkpoint with 2 ranks until the epoch ends.
        var resumed = new EpochSampler(n, seed: 42, saved);
        while (resumed.State.Cursor < n)
        {
            var gb = resumed.Next(batch);
            for (int r = 0; r < 2; r++) trained.AddRange(gb.ShardFor(r, 2));
        }
        Assert.Equal(Enumerable.Range(0, n), trained.Order());
    }

    [Fact]
    public void Bad_arguments_are_refused_with_a_reason()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EpochSampler(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EpochSampler(5, 1, new SamplerState(0, 6)));
        Assert.Throws<ArgumentOutOfRangeException>(() => GlobalBatch.ShardRange(4, 3, 3));
    }
}
