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

    /// <summary>
    /// Every record of <paramref name="files"/> with its part, in reading order: train files, then validation, then test.
    /// </summary>
    /// <remarks>
    /// Unsplit data: record i (counted over all files) goes where <see cref="Assign"/> says. Presplit data: each file's
    /// records go to its split, except that when there are no validation files, validation is taken out of train records
    /// by <see cref="Assign"/> with <paramref name="validationFraction"/> and no test (HF datasets often ship train + test only).
    /// </remarks>
    public static IEnumerable<SplitRecord> Records(DataFileSet files, DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap,
                                                   ulong seed, double validationFraction, double testFraction)
    {
        Check(validationFraction, testFraction);
        var root = files.DisplayRoot;
        var carve = files.Presplit && files.Validation.Count == 0 && validationFraction > 0;
        long index = 0;
        var fileIndex = 0;
        foreach (var (file, named) in files.Train.Select(f => (f, SplitName.Train))
                     .Concat(files.Validation.Select(f => (f, SplitName.Validation)))
                     .Concat(files.Test.Select(f => (f, SplitName.Test))))
        {
            foreach (var record in RecordReader.Read(file, schema, fieldMap, root))
            {
                var split = !files.Presplit ? Assign(seed, index++, validationFraction, testFraction)
                          : carve && named == SplitName.Train ? Assign(seed, index++, validationFraction, 0)
                          : named;
                yield return new SplitRecord(split, record, fileIndex);
            }
            fileIndex++;
        }
    }

    /// <summary>Every text of the training records (all text fields, and words joined by spaces), e.g. to build a sub-vocabulary.</summary>
    public static IEnumerable<string> TrainingTexts(DataFileSet files, DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap,
                                                    ulong seed, double validationFraction, double testFraction)
    {
        foreach (var r in Records(files, schema, fieldMap, seed, validationFraction, testFraction))
        {
            if (r.Split != SplitName.Train) continue;
            foreach (var field in DataSchemas.Fields(schema))
            {
                if (field.Kind == FieldKind.Text) yield return r.Record.Text(field.Name);
                else if (field.Kind == FieldKind.Words && field.Name == "tokens") yield return string.Join(' ', r.Record.Words(field.Name));
            }
        }
    }
}

/// <summary>A record with the split it belongs to and the index of its file in the set's reading order.</summary>
public sealed record SplitRecord(SplitName Split, DataRecord Record, int FileIndex);
