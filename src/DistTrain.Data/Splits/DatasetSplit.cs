namespace DistTrain.Data.Splits;

/// <summary>Which part of a corpus an item belongs to.</summary>
public enum SplitName { Train, Validation, Test }

/// <summary>Fractions of each stratum that go to validation and test; the rest is train.</summary>
public sealed record SplitRatios(double Validation, double Test)
{
    /// <summary>80/10/10.</summary>
    public static SplitRatios Default { get; } = new(0.1, 0.1);
}

/// <summary>A corpus cut into train/validation/test; every item is in exactly one part, each part in id order.</summary>
public sealed record DatasetSplit<T>(IReadOnlyList<T> Train, IReadOnlyList<T> Validation, IReadOnlyList<T> Test)
{
    /// <summary>The part named by <paramref name="name"/>.</summary>
    public IReadOnlyList<T> this[SplitName name] => name switch
    {
        SplitName.Train => Train,
        SplitName.Validation => Validation,
        SplitName.Test => Test,
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
