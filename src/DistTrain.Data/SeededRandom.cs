namespace DistTrain.Data;

/// <summary>A small SplitMix64 generator: the same seed gives the same numbers on every machine and .NET version.</summary>
/// <remarks>
/// System.Random's sequence is an implementation detail, and a dataset item must be a pure function of
/// (seed, index) so that any rank can build any example without replaying the ones before it.
/// </remarks>
public struct SeededRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A generator for one example (or one stratum) derived from a run seed, independent of other indices.</summary>
    public static SeededRandom For(ulong seed, ulong index, ulong stream = 0) =>
        new(Mix(Mix(seed ^ 0x9E3779B97F4A7C15UL * (stream + 1)) + index));

    /// <summary>A stable 64-bit hash of a string (FNV-1a); string.GetHashCode is randomized per process.</summary>
    public static ulong Hash(string text)
    {
        var h = 14695981039346656037UL;
        foreach (var c in text) { h ^= c; h *= 1099511628211UL; }
        return h;
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform integer in [0, maxExclusive).</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        // Rejection sampling removes the modulo bias.
        var bound = (ulong)maxExclusive;
        var limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong x;
        do { x = NextUInt64(); } while (x >= limit);
        return (int)(x % bound);
    }

    /// <summary>Uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
