using DistTrain.Data.Files;
using DistTrain.Data.Splits;

namespace DistTrain.Data.Tests.Files;

public sealed class DataSplitterTests
{
    [Fact]
    public void The_split_is_a_pure_function_of_seed_and_index()
    {
        var a = Enumerable.Range(0, 1000).Select(i => DataSplitter.Assign(7, i, 0.1, 0.1)).ToArray();
        var backwards = Enumerable.Range(0, 1000).Reverse().Select(i => DataSplitter.Assign(7, i, 0.1, 0.1)).Reverse().ToArray();
        var otherSeed = Enumerable.Range(0, 1000).Select(i => DataSplitter.Assign(8, i, 0.1, 0.1)).ToArray();
        Assert.Equal(a, backwards);
        Assert.NotEqual(a, otherSeed);
    }

    [Theory]
    [InlineData(0.1, 0.1)]
    [InlineData(0.05, 0.0)]
    [InlineData(0.0, 0.0)]
    public void Fractions_hold_within_binomial_tolerance(double validation, double test)
    {
        const int n = 100_000;
        var counts = Enumerable.Range(0, n).GroupBy(i => DataSplitter.Assign(1234, i, validation, test)).ToDictionary(g => g.Key, g => g.Count());
        foreach (var (split, p) in new[] { (SplitName.Validation, validation), (SplitName.Test, test) })
        {
            var tolerance = 4 * Math.Sqrt(n * p * (1 - p)) + 1; // 4σ
            Assert.InRange(counts.GetValueOrDefault(split), n * p - tolerance, n * p + tolerance);
        }
    }

    [Fact]
    public void Fractions_must_leave_training_data()
    {
        Assert.Throws<ArgumentException>(() => DataSplitter.Assign(1, 0, 0.5, 0.5));
        Assert.Throws<ArgumentException>(() => DataSplitter.Assign(1, 0, -0.1, 0));
    }
}
