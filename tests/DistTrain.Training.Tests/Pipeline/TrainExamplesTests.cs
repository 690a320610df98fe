using DistTrain.Execution;
using DistTrain.Data.Datasets;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary><c>data.train_examples</c>: a seeded sample of the training set, with held-out data read whole.</summary>
public sealed class TrainExamplesTests
{
    private sealed class Numbers(int count) : IIndexedDataset<int>
    {
        public int Count => count;
        public int this[int index] => index;
    }

    [Fact]
    public void The_sample_is_distinct_in_order_and_a_function_of_the_seed_alone()
    {
        var a = new Sampled<int>(new Numbers(1000), 100, seed: 5);
        int[] drawn = Enumerable.Range(0, a.Count).Select(i => a[i]).ToArray();
        Assert.Equal(100, drawn.Length);
        Assert.Equal(drawn.Order(), drawn);                       // original order kept
        Assert.Equal(100, drawn.Distinct().Count());
        Assert.True(drawn[^1] - drawn[0] > 500, "a sample, not a prefix");
        var again = new Sampled<int>(new Numbers(1000), 100, seed: 5);
        Assert.Equal(drawn, Enumerable.Range(0, again.Count).Select(i => again[i]));
        var other = new Sampled<int>(new Numbers(1000), 100, seed: 6);
        Assert.NotEqual(drawn, Enumerable.Range(0, other.Count).Select(i => other[i]));
        Assert.Equal(10, new Sampled<int>(new Numbers(10), 100, seed: 5).Count);   // never more than there is
    }

    [Fact]
    public void A_stage_trains_on_the_sample_and_validates_on_the_whole_split()
    {
        var full = TinySpecs.Load(TinySpecs.Gpt.Replace("max_examples: 256", "max_examples: 200"));
        var sampled = full with { Stages = full.Stages.Select(s => s with { Data = s.Data with { TrainExamples = 37 } }).ToList() };
        using var dir = new TempDir();
        using var a = ObjectiveFactory.Create(full, full.Stages[0], new StageArtifacts(dir.Path, "a", "lm"), CPU);
        using var b = ObjectiveFactory.Create(sampled, sampled.Stages[0], new StageArtifacts(dir.Path, "b", "lm"), CPU);
        Assert.Equal(200, a.TrainCount);
        Assert.Equal(37, b.TrainCount);
        Assert.Equal(a.ValidationCount, b.ValidationCount);
    }
}
