namespace DistTrain.Contracts.Specs;

/// <summary>Corpora shipped with DistTrain, named rather than pathed so a spec runs anywhere.</summary>
public enum CorpusName { Brown, Spam }

/// <summary>Which part of a corpus a stage reads; splits are fixed by the data layer so every worker agrees.</summary>
public enum DataSplit { Train, Validation, Test, All }

/// <summary>Where a stage's examples come from. A closed set: a built-in corpus, a file under the data root, or an earlier stage's output.</summary>
public abstract record DataSource
{
    private protected DataSource() { }
}

/// <summary>A corpus shipped with DistTrain (YAML <c>corpus: brown</c>).</summary>
public sealed record BuiltinCorpus(CorpusName Name) : DataSource;

/// <summary>A file, folder or glob relative to the data root (YAML <c>path: corpora/x.jsonl</c>); never absolute, never <c>..</c>.</summary>
/// <remarks>Relative paths are what let one spec run in-process and on the cluster, where the root differs.</remarks>
public sealed record CorpusFile(string Path) : DataSource;

/// <summary>The labelled data set written by an earlier label stage (YAML <c>from: NAME</c>).</summary>
public sealed record StageOutput(string Stage) : DataSource;

/// <summary>A stage's input data.</summary>
/// <param name="MaxExamples">Cap on examples read; null reads them all.</param>
/// <param name="TrainExamples">A seeded random sample of this many training examples (after <paramref name="MaxExamples"/>);
/// held-out data is not sampled. Null trains on every example. For learning curves and low-resource fine-tuning.</param>
/// <param name="Fields">Files of your own: the column that holds each schema field when the names differ (<c>fields: {text: body}</c>).</param>
/// <param name="ValidationFraction">Files of your own without split names: the share of records held out for validation (default <see cref="DefaultHeldOut"/>).</param>
/// <param name="TestFraction">The same for the test split.</param>
public sealed record DataSpec(DataSource Source, DataSplit Split, int SeqLen, int? MaxExamples = null, int? TrainExamples = null,
    IReadOnlyDictionary<string, string>? Fields = null, double? ValidationFraction = null, double? TestFraction = null)
{
    /// <summary>Share of an unsplit file's records each held-out split gets when the spec gives none.</summary>
    public const double DefaultHeldOut = 0.05;
}
