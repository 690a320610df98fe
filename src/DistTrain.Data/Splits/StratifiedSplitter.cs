namespace DistTrain.Data.Splits;

/// <summary>Deterministic train/validation/test split by whole items (documents, mails), stratified by a label.</summary>
/// <remarks>
/// Splitting by document, not by sentence, keeps a document's sentences out of two splits: otherwise
/// validation text would leak into training through its neighbours.
/// </remarks>
public static class StratifiedSplitter
{
    /// <summary>Splits <paramref name="items"/>: each stratum is sorted by id, shuffled from the seed and cut by the ratios.</summary>
    /// <param name="id">A unique, stable id per item; sorting by it first makes the result independent of input order.</param>
    /// <param name="stratum">The label whose proportions every split keeps (genre, mail group).</param>
    public static DatasetSplit<T> Split<T>(IEnumerable<T> items, Func<T, string> id, Func<T, string> stratum,
                                           SplitRatios ratios, ulong seed)
    {
        if (ratios.Validation < 0 || ratios.Test < 0 || ratios.Validation + ratios.Test >= 1)
            throw new ArgumentException($"validation {ratios.Validation} + test {ratios.Test} must be in [0, 1)", nameof(ratios));
        var all = items.ToList();
        var duplicate = all.GroupBy(id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"id '{duplicate.Key}' occurs more than once", nameof(items));

        List<T> train = [], validation = [], test = [];
        foreach (var group in all.GroupBy(stratum).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var members = group.OrderBy(id, StringComparer.Ordinal).ToList();
            // Each stratum gets its own stream, so adding a genre never reshuffles another one.
            var rng = SeededRandom.For(seed, SeededRandom.Hash(group.Key));
            rng.Shuffle(members);
            var nValidation = (int)Math.Round(members.Count * ratios.Validation, MidpointRounding.AwayFromZero);
            var nTest = (int)Math.Round(members.Count * ratios.Test, MidpointRounding.AwayFromZero);
            validation.AddRange(members.Take(nValidation));
            test.AddRange(members.Skip(nValidation).Take(nTest));
            train.AddRange(members.Skip(nValidation + nTest));
        }
        List<T> Sorted(List<T> part) => part.OrderBy(id, StringComparer.Ordinal).ToList();
        return new DatasetSplit<T>(Sorted(train), Sorted(validation), Sorted(test));
    }
}
