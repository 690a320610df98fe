using DistTrain.Data.Corpora;
using DistTrain.Data.Datasets;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests;

/// <summary>The Brown Corpus, its split, vocabulary and encoding, built once per test run (they take seconds).</summary>
public static class SharedBrown
{
    public const ulong Seed = 1234;

    private static readonly Lazy<BrownCorpus> CorpusLazy = new(BrownCorpus.LoadDefault);
    private static readonly Lazy<DatasetSplit<CorpusDocument>> SplitLazy = new(() => Corpus.Split(Seed));
    private static readonly Lazy<SubVocabulary> VocabLazy = new(() => CorpusVocabulary.Build(Split.Train));
    private static readonly Lazy<EncodedCorpus> TrainLazy = new(() => EncodedCorpus.Encode(Split.Train, Vocabulary, Corpus.Genres));
    private static readonly Lazy<EncodedCorpus> ValidationLazy =
        new(() => EncodedCorpus.Encode(Split.Validation, Vocabulary, Corpus.Genres));

    public static BrownCorpus Corpus => CorpusLazy.Value;
    public static DatasetSplit<CorpusDocument> Split => SplitLazy.Value;
    public static SubVocabulary Vocabulary => VocabLazy.Value;
    public static EncodedCorpus Train => TrainLazy.Value;
    public static EncodedCorpus Validation => ValidationLazy.Value;
}
