using DistTrain.Data.Splits;

namespace DistTrain.Data.Files;

/// <summary>The seeded split of data that comes unsplit: record i's part depends only on (seed, i) and the fractions.</summary>
/// <remarks>
/// A uniform draw u from <see cref="SeededRandom.For"/>(seed, i) in its own stream: u &lt; validation → validation,
/// u &lt; validation + test → test, else train. Nothing is shuffled or held in memory, so it streams corpora larger
/// than RAM and gives the same split on every worker. The parts' sizes are binomial around the fractions (for
/// 100,000 records, within about ±0.3 points at 3σ), not exact counts as <see cref="StratifiedSplitter"/> gives;
/// records are counted across the files in their resolved order, so adding a file at the end keeps earlier records' parts.
/// </remarks>
public static class DataSplitter
{
    private static readonly ulong Stream = SeededRandom.Hash("data-split");

    /// <summary>The part record <paramref name="recordIndex"/> belongs to.</summary>
    public static SplitName Assign(ulong seed, long recordIndex, double validationFraction, double testFraction)
    {
        Check(validationFraction, testFraction);
        var u = SeededRandom.For(seed, (ulong)recordIndex, Stream).NextDouble();
        return u < validationFraction ? SplitName.Validation
             : u < validationFraction + testFraction ? SplitName.Test
             : SplitName.Train;
    }

    /// <summary>Throws unless both fractions are in [0, 1) and leave some training data.</summary>
    public static void Check(double validationFraction, double testFraction)
    {
        if (validationFraction is < 0 or >= 1 || testFraction is < 0 or >= 1 || validationFraction + testFraction >= 1)
            throw new ArgumentException($"validation {validationFraction} and test {testFraction} must be in [0, 1) and sum below 1");
    }
}
