using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Objectives;
using DistTrain.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;
using Transformer = DistTrain.Models.Transformer;

namespace DistTrain.Training.Tests.Engine;

/// <summary>
/// Overlapping the gradient all-reduce with backward (<see cref="BackwardCuts"/>, <see cref="GradientBuckets"/>): the
/// segmented backward must compute the very same gradients as one backward, and overlapped training the very same
/// parameters as training that reduces once after backward. Ranks run as threads over an in-memory group that sums
/// in rank order, so both modes see identical arithmetic and the comparison can be bit for bit.
/// </summary>
public sealed class GradientOverlapTests
{
    private static GptConfig Gpt(int layers = 3) => new()
    {
        VocabSize = 64, HiddenSize = 16, Layers = layers, Heads = 2, IntermediateSize = 32, MaxPositions = 16, Dropout = 0, AttentionDropout = 0,
    };

    private static Tensor Ids(int seed, int batch = 3, int length = 8)
    {
        var g = new Random(seed);
        return torch.tensor(Enumerable.Range(0, batch * length).Select(_ => (long)g.Next(64)).ToArray(), [batch, length]);
    }

    /// <summary>Every gradient copied out; the tensors read are disposed here, so no finalizer of this test runs in a later one (GcStressSoakTests).</summary>
    private static float[][] Gradients(nn.Module model)
    {
        using var scope = NewDisposeScope();
        return Trainer.TrainableParameters(model).Select(p => p.grad is null ? [] : p.grad.data<float>().ToArray()).ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_backward_split_at_every_block_gives_the_same_gradients(int passes)
    {
        torch.manual_seed(5);
        using var model = new GptLanguageModel(Gpt());
        using var ids = Ids(1);
        // Two passes, as DPO's chosen and rejected: every block and the tied token table get gradient from both.
        Tensor Loss() => passes == 1 ? LanguageModelLosses.CausalLm(model.forward(ids, null), ids).Sum
            : LanguageModelLosses.CausalLm(model.forward(ids, null), ids).Sum.add(LanguageModelLosses.CausalLm(model.forward(ids.flip(1), null), ids).Sum);

        using (var _ = NewDisposeScope()) Loss().backward();
        var whole = Gradients(model);
        model.zero_grad();

        var cuts = new BackwardCuts();
        model.Backbone.Cuts = cuts;
        using (var _ = NewDisposeScope())
        {
            Loss().backward();
            Assert.Equal(3 * passes, cuts.Recorded.Count);
            for (int i = cuts.Recorded.Count - 1; i >= 0; i--) cuts.Recorded[i].Backward();
        }
        model.Backbone.Cuts = null;
        var split = Gradients(model);

        Assert.Equal(whole.Length, split.Length);
        Assert.All(split, g => Assert.NotEmpty(g));
        for (int i = 0; i < whole.Length; i++)
        {
            // One pass: each parameter's gradient is summed from at most two contributions (the tied token table:
            // input and output), and a + b = b + a, so the split is exact. Two passes add contributions in another
            // order, which rounds differently: same values to float precision.
            if (passes == 1) Assert.Equal(whole[i], split[i]);
            else for (int j = 0; j < whole[i].Length; j++) Assert.Equal(whole[i][j], split[i][j], 1e-6f);
        }
    }

    [Fact]
    public void Buckets_hold_whole_blocks_last_first_and_end_with_everything_else()
    {
        torch.manual_seed(5);
        using var model = new GptLanguageModel(Gpt());
        var trainable = Trainer.TrainableParameters(model);
        var blocks = model.Backbone.Blocks;

        var one = GradientBuckets.Plan(model, trainable, capBytes: 0);
        Assert.False(one.Overlaps);
        Assert.Equal(trainable.Select(p => p.Handle), one.Parameters.Select(p => p.Handle));

        var each = GradientBuckets.Plan(model, trainable, capBytes: 1);
        Assert.Equal(4, each.Buckets.Count);
        Assert.Equal(new[] { blocks[2], blocks[1], blocks[0] }, each.Buckets.Take(3).Select(b => b.Blocks.Single()));
        Assert.Empty(each.Buckets[3].Blocks);
        Assert.Equal(blocks[2].parameters().Select(p => p.Handle), each.Parameters[each.Buckets[0].First..each.Buckets[0].End].Select(p => p.Handle));
        Assert.Equal(trainable.Select(p => p.Handle).Order(), each.Parameters.Select(p => p.Handle).Order());   // each once

        long blockBytes = blocks[0].parameters().Sum(p => p.numel()) * sizeof(float);
        var pairs = GradientBuckets.Plan(model, trainable, capBytes: 2 * blockBytes);
        Assert.Equal(new[] { 2, 1, 0 }, pairs.Buckets.Select(b => b.Blocks.Count));
    }

    [Fact]
    public void Shared_and_frozen_blocks_are_never_cut()
    {
        torch.manual_seed(5);
        using var albert = new Transformer(new AlbertConfig { VocabSize = 64, HiddenSize = 16, EmbeddingSize = 8, Layers = 3, Heads = 2, IntermediateSize = 32, MaxPositions = 16 });
        Assert.False(GradientBuckets.Plan(albert, Trainer.TrainableParameters(albert), capBytes: 1).Overlaps);
        Assert.Throws<InvalidOperationException>(() => albert.Cuts = new BackwardCuts());

        using var frozen = new GptLanguageModel(Gpt());
        foreach (var p in frozen.Backbone.parameters()) p.requires_grad = false;
        var plan = GradientBuckets.Plan(frozen, Trainer.TrainableParameters(frozen), capBytes: 1);
        Assert.False(plan.Overlaps);
        Assert.Empty(plan.CutTransformers);
    }

    /// <summary>Ranks as threads: per rank a list of micro-batch seeds (empty = a rank the epoch left without data).</summary>
    private static float[][] Train(long bucketBytes, int[][] seedsPerRank, int steps = 3)
    {
        int world = seedsPerRank.Length;
        var group = new MemoryGroup(world);
        var results = new float[world][];
        var errors = new Exception?[world];
        torch.set_num_threads(1);   // as every worker runs; the ranks share the process's intra-op pool
        // Built here, before any rank runs: the trainer reseeds torch's one global generator at every step.
        var models = Enumerable.Range(0, world).Select(_ => { torch.manual_seed(5); return new GptLanguageModel(Gpt()); }).ToArray();
        var threads = Enumerable.Range(0, world).Select(rank => new Thread(() =>
        {
            try
            {
                using var model = models[rank];
                using var trainer = new Trainer(model, new TrainerOptions(new LearningRateSchedule(1e-2, 0, steps, "constant"), BucketBytes: bucketBytes), group.Member(rank));
                for (int step = 0; step < steps; step++)
                {
                    var micro = seedsPerRank[rank].Select(seed => Batch(model, seed + 100 * step)).ToList();
                    var report = trainer.Step(step, micro);
                    Assert.True(report.CommSeconds >= 0);
                }
                using (var scope = NewDisposeScope())
                    results[rank] = Trainer.TrainableParameters(model).SelectMany(p => p.detach().data<float>().ToArray()).ToArray();
            }
            catch (Exception e) { errors[rank] = e; group.Abort(); }
        })).ToList();
        threads.ForEach(t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a rank did not finish"));
        Assert.All(errors, e => Assert.Null(e));
        return results;
    }

    private static IMicroBatch Batch(GptLanguageModel model, int seed)
    {
        var bag = new TensorBag();
        var ids = bag.Add(Ids(seed));
        return new MicroBatch([ids.shape[0] * (ids.shape[1] - 1)], () => LanguageModelLosses.CausalLm(model.forward(ids, null), ids), bag);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Overlapped_buckets_train_the_same_parameters_as_one_reduction_after_backward(bool accumulate)
    {
        // Rank 2 has no data (an epoch end); with accumulation rank 0 runs two micro-batches.
        int[][] seeds = accumulate ? [[1, 2], [3], []] : [[1], [3], []];
        var once = Train(bucketBytes: 0, seeds);
        var perBlock = Train(bucketBytes: 1, seeds);
        var pairs = Train(bucketBytes: 3_000, seeds);
        for (int rank = 0; rank < seeds.Length; rank++)
        {
            Assert.Equal(once[0], once[rank]);       // replicas stay identical
            Assert.Equal(perBlock[0], perBlock[rank]);
            if (!accumulate)
            {
                // Bit for bit: the same sums of the same gradients.
                Assert.Equal(once[0], perBlock[rank]);
                Assert.Equal(once[0], pairs[rank]);
            }
            else
            {
                // The tied token table of rank 0 adds micro-batch 1, the output projection and the embedding lookup
                // in another order when backward is split: float rounding (AdamW's m/√v magnifies it where a
                // gradient is near zero), within the bound the cluster's equivalence tests hold data parallelism to.
                Assert.True(MaxAbsDiff(once[0], perBlock[rank]) <= 1e-5, $"max |Δ| = {MaxAbsDiff(once[0], perBlock[rank])}");
                Assert.True(MaxAbsDiff(once[0], pairs[rank]) <= 1e-5, $"max |Δ| = {MaxAbsDiff(once[0], pairs[rank])}");
            }
        }
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    /// <summary>An in-memory group: every rank's call contributes its range, and all get the sum taken in rank order.</summary>
    private sealed class MemoryGroup(int world)
    {
        private static readonly TimeSpan Limit = TimeSpan.FromMinutes(1);
        private readonly Barrier _barrier = new(world);
        private readonly float[][] _slots = new float[world][];

        public IGradientReducer Member(int rank) => new Rank(this, rank);

        public void Abort() => _barrier.Dispose();

        private sealed class Rank(MemoryGroup g, int rank) : IGradientReducer
        {
            int IGradientReducer.Rank => rank;
            public int WorldSize => g._slots.Length;

            public void AllReduceSum(float[] buffer, int offset, int length, int exactTail)
            {
                g._slots[rank] = buffer[offset..(offset + length)];
                if (!g._barrier.SignalAndWait(Limit)) throw new TimeoutException("a rank did not join the all-reduce");
                var sum = new float[length];
                foreach (var slot in g._slots)
                    for (int i = 0; i < length; i++) sum[i] += slot[i];
                if (!g._barrier.SignalAndWait(Limit)) throw new TimeoutException("a rank did not finish the all-reduce");
                sum.CopyTo(buffer, offset);
            }
        }
    }
}
