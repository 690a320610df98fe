using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Corpora;
using DistTrain.Data.Datasets;
using DistTrain.Data.Files;
using DistTrain.Data.Shards;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Pipeline;

/// <summary>The Brown Corpus of one job: document splits, the tokenizer, and each split encoded with it.</summary>
public sealed record BrownData(ITextTokenizer Vocabulary, EncodedCorpus Train, EncodedCorpus Validation, EncodedCorpus Test, TagVocabulary Tags)
{
    public EncodedCorpus this[SplitName split] => split switch
    {
        SplitName.Train => Train,
        SplitName.Validation => Validation,
        _ => Test,
    };
}

/// <summary>
/// Loads, tokenizes and prepares data once per process and hands the same objects to every stage that asks:
/// tokenizing Brown takes seconds, and every worker derives the identical vocabulary from (seed, size) without
/// coordination. The user's files are prepared into a content-addressed cache under the data root
/// (<see cref="PreparedData"/>), which every process and node sharing the root reuses.
/// </summary>
public sealed class DataCatalog
{
    public static readonly DataCatalog Shared = new();

    /// <summary>Environment variable that moves the prepared-data cache out of the data root (a read-only data volume).</summary>
    public const string CacheVariable = "DISTTRAIN_DATA_CACHE";

    private readonly Lazy<BrownCorpus> _brown = new(BrownCorpus.LoadDefault);
    private readonly ConcurrentDictionary<(ulong, int), Lazy<BrownData>> _bySize = new();
    private readonly ConcurrentDictionary<(ulong, string), Lazy<BrownData>> _byTokenizer = new();
    private readonly ConcurrentDictionary<ulong, Lazy<DatasetSplit<SpamMessage>>> _spam = new();
    private readonly ConcurrentDictionary<string, Lazy<PreparedData>> _prepared = new();
    private readonly ConcurrentDictionary<string, Lazy<ITextTokenizer>> _tokenizers = new();

    public BrownCorpus BrownCorpus => _brown.Value;

    /// <summary>Brown split by document from <paramref name="seed"/>, with a vocabulary of <paramref name="vocabSize"/> ids from the train split only.</summary>
    public BrownData Brown(ulong seed, int vocabSize) =>
        _bySize.GetOrAdd((seed, vocabSize), key => new Lazy<BrownData>(() =>
        {
            var split = _brown.Value.Split(key.Item1);
            // Rare words are spelled with the fewest known pieces rather than bytes: the same exact round trip,
            // sequences 14% longer than GPT-2's instead of 54% (docs/data.md).
            var vocab = CorpusVocabulary.Build(split.Train, key.Item2, FallbackMode.Pieces);
            var data = Encode(split, vocab);
            _byTokenizer.TryAdd((key.Item1, vocab.Identity), new Lazy<BrownData>(data));
            return data;
        })).Value;

    /// <summary>Brown split by document from <paramref name="seed"/>, encoded with a tokenizer the job declared.</summary>
    public BrownData Brown(ulong seed, ITextTokenizer tokenizer) =>
        _byTokenizer.GetOrAdd((seed, tokenizer.Identity), key => new Lazy<BrownData>(() => Encode(_brown.Value.Split(key.Item1), tokenizer))).Value;

    private BrownData Encode(DatasetSplit<CorpusDocument> split, ITextTokenizer tokenizer)
    {
        var genres = _brown.Value.Genres;
        return new BrownData(tokenizer,
            EncodedCorpus.Encode(split.Train, tokenizer, genres),
            EncodedCorpus.Encode(split.Validation, tokenizer, genres),
            EncodedCorpus.Encode(split.Test, tokenizer, genres),
            TagVocabulary.Build(split.Train));
    }

    /// <summary>SpamAssassin from the local cache (fetch it first with <c>disttrain data fetch spam</c>), split by message.</summary>
    public DatasetSplit<SpamMessage> Spam(ulong seed) =>
        _spam.GetOrAdd(seed, s => new Lazy<DatasetSplit<SpamMessage>>(() => SpamAssassinCorpus.LoadFromCache().Split(s))).Value;

    /// <summary>The prepared-data cache of a data root: <c>$DISTTRAIN_DATA_CACHE</c>, else <c>ROOT/.disttrain-cache</c>.</summary>
    /// <remarks>
    /// Read here, not by the node's NodeEnvironment: any process that prepares data reads it, the in-process
    /// `disttrain run` as well as workers, and Training sits below the project that holds NodeEnvironment.
    /// </remarks>
    public static string CacheRoot(string dataRoot) =>
        Environment.GetEnvironmentVariable(CacheVariable) is { Length: > 0 } dir ? Path.GetFullPath(dir) : Path.Combine(dataRoot, ".disttrain-cache");

    /// <summary>The user's files at <paramref name="path"/>, tokenized once into shards (or the shards already in the cache).</summary>
    /// <param name="seed">The job seed: it draws the held-out records of an unsplit file, the same for every stage of the job.</param>
    public PreparedData Prepared(string dataRoot, string path, RecordSchema schema, DataSpec data, ITextTokenizer tokenizer, ulong seed,
        IProgress<PrepareProgress>? progress = null)
    {
        var (validation, test) = Fractions(data);
        string key = string.Join('\n', Path.GetFullPath(dataRoot), path, schema, FieldKey(data.Fields), tokenizer.Identity, seed, validation, test);
        return _prepared.GetOrAdd(key, _ => new Lazy<PreparedData>(() =>
        {
            var files = Files(dataRoot, path, data);
            return PreparedData.Prepare(files, ToDataSchema(schema), data.Fields, tokenizer, seed, validation, test, CacheRoot(dataRoot), progress);
        })).Value;
    }

    /// <summary>The files a spec's <c>data.path</c> names, split by the train/validation/test naming convention or not at all.</summary>
    public static DataFileSet Files(string dataRoot, string path, DataSpec data)
    {
        var files = DataFileResolver.Resolve(dataRoot, path);
        // Named splits are used as named; only a missing validation split is carved out of train (validation_fraction).
        if (files.Presplit && files.Validation.Count > 0 && data.ValidationFraction is not null)
            throw new DataFormatException($"{path}: it has validation files, so data.validation_fraction does not apply; remove it");
        if (files.Presplit && data.TestFraction is not null)
            throw new DataFormatException($"{path}: its files are split by name (train/validation/test), so data.test_fraction does not apply; remove it");
        return files;
    }

    /// <summary>The held-out shares of an unsplit file.</summary>
    public static (double Validation, double Test) Fractions(DataSpec data) =>
        (data.ValidationFraction ?? DataSpec.DefaultHeldOut, data.TestFraction ?? DataSpec.DefaultHeldOut);

    /// <summary>A tokenizer from the user's files (vocab.json + merges.txt, or tokenizer.json), read once per process.</summary>
    public ITextTokenizer TokenizerFiles(string fullPath) =>
        _tokenizers.GetOrAdd("files\n" + fullPath, _ => new Lazy<ITextTokenizer>(() => Tokenizers.FromFiles(fullPath))).Value;

    /// <summary>
    /// A sub-vocabulary of <paramref name="size"/> ids built from the training split of the user's files: the
    /// most frequent GPT-2 tokens of that text. Saved in the data cache, keyed by the files and settings, so every
    /// worker and every later job over the same files loads the same one instead of counting again.
    /// </summary>
    public ITextTokenizer Subvocabulary(string dataRoot, string path, RecordSchema schema, DataSpec data, int size, ulong seed)
    {
        var (validation, test) = Fractions(data);
        var files = Files(dataRoot, path, data);
        var key = Sha256(string.Join('\n', "subvocab/1", schema, FieldKey(data.Fields), size, seed, validation, test,
            string.Join('\n', files.Train.Concat(files.Validation).Concat(files.Test).Select(FileKey))));
        return _tokenizers.GetOrAdd(key, _ => new Lazy<ITextTokenizer>(() =>
        {
            var file = Path.Combine(CacheRoot(dataRoot), "subvocab", key[..32] + ".json");
            if (File.Exists(file)) return SubVocabulary.Load(file);
            var texts = DataSplitter.TrainingTexts(files, ToDataSchema(schema), data.Fields, seed, validation, test);
            var vocab = CorpusVocabulary.FromTexts(texts, size, FallbackMode.Pieces, $"GPT-2 subset, {size} ids, from the training split of {path}");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var temp = file + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
            vocab.Save(temp);
            File.Move(temp, file, overwrite: true);
            return vocab;
        })).Value;
    }

    /// <summary>The data layer's name for a record schema.</summary>
    public static DataSchema ToDataSchema(RecordSchema schema) => schema switch
    {
        RecordSchema.Text => DataSchema.Text,
        RecordSchema.Classification => DataSchema.Classification,
        RecordSchema.TokenTags => DataSchema.TokenTags,
        RecordSchema.Sft => DataSchema.Sft,
        RecordSchema.Preference => DataSchema.Preference,
        _ => throw new ArgumentOutOfRangeException(nameof(schema), schema, null),
    };

    private static string FieldKey(IReadOnlyDictionary<string, string>? fields) =>
        fields is null ? "" : string.Join(",", fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));

    private static string FileKey(string file)
    {
        var info = new FileInfo(file);
        return $"{file}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
    }

    private static string Sha256(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();
}
