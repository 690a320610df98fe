using System.Collections.Concurrent;
using DistTrain.Data.Corpora;
using DistTrain.Data.Datasets;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Pipeline;

/// <summary>The Brown Corpus of one job: document splits, the sub-vocabulary built from the train split, and each split encoded.</summary>
public sealed record BrownData(SubVocabulary Vocabulary, EncodedCorpus Train, EncodedCorpus Validation, EncodedCorpus Test, TagVocabulary Tags)
{
    public EncodedCorpus this[SplitName split] => split switch
    {
        SplitName.Train => Train,
        SplitName.Validation => Validation,
        _ => Test,
    };
}

/// <summary>
/// Loads and encodes corpora once per process and hands the same objects to every stage that asks: tokenizing
/// Brown takes seconds, and every worker derives the identical vocabulary from (seed, size) without coordination.
/// </summary>
public sealed class DataCatalog
{
    public static readonly DataCatalog Shared = new();

    private readonly Lazy<BrownCorpus> _brown = new(BrownCorpus.LoadDefault);
    private readonly ConcurrentDictionary<(ulong, int), Lazy<BrownData>> _encoded = new();
    private readonly ConcurrentDictionary<ulong, Lazy<DatasetSplit<SpamMessage>>> _spam = new();

    public BrownCorpus BrownCorpus => _brown.Value;

    /// <summary>Brown split by document from <paramref name="seed"/>, with a vocabulary of <paramref name="vocabSize"/> ids from the train split only.</summary>
    public BrownData Brown(ulong seed, int vocabSize) =>
        _encoded.GetOrAdd((seed, vocabSize), key => new Lazy<BrownData>(() =>
        {
            var corpus = _brown.Value;
            var split = corpus.Split(key.Item1);
            // Rare words are spelled with the fewest known pieces rather than bytes: the same exact round trip,
            // sequences 14% longer than GPT-2's instead of 54% (docs/data.md).
            var vocab = CorpusVocabulary.Build(split.Train, key.Item2, FallbackMode.Pieces);
            var genres = corpus.Genres;
            return new BrownData(vocab,
                EncodedCorpus.Encode(split.Train, vocab, genres),
                EncodedCorpus.Encode(split.Validation, vocab, genres),
                EncodedCorpus.Encode(split.Test, vocab, genres),
                TagVocabulary.Build(split.Train));
        })).Value;

    /// <summary>SpamAssassin from the local cache (fetch it first with <c>disttrain data fetch spam</c>), split by message.</summary>
    public DatasetSplit<SpamMessage> Spam(ulong seed) =>
        _spam.GetOrAdd(seed, s => new Lazy<DatasetSplit<SpamMessage>>(() => SpamAssassinCorpus.LoadFromCache().Split(s))).Value;
}
