using DistTrain.Contracts.Specs;
using DistTrain.Data.Datasets;
using DistTrain.Data.Shards;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// The examples one stage reads, in each form an objective asks for, with the tokenizer that made them and the
/// class names its model predicts. A closed set of two sources behind one surface: the built-in corpora
/// (<see cref="BuiltinStageData"/>) and the user's prepared files (<see cref="FileStageData"/>), so the objective
/// factory never asks where the data came from.
/// </summary>
public abstract class StageData
{
    private protected StageData(ITextTokenizer tokenizer, IReadOnlyList<string> classes) => (Tokenizer, Classes) = (tokenizer, classes);

    /// <summary>The job's tokenizer; its size is the model's vocabulary.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>Class names in label order for a classification stage (the model's, when it was trained earlier); empty otherwise.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Packed language-modelling sequences of one split.</summary>
    public abstract IIndexedDataset<LmExample> Lm(SplitName split, int seqLen, ulong seed);

    /// <summary>BERT/ALBERT sentence pairs (built-in corpora only: they need documents cut into sentences).</summary>
    public abstract IIndexedDataset<SentencePairExample> SentencePairs(SplitName split, SentencePairTask task, int seqLen, ulong seed);

    /// <summary>"[cls] text [sep]" with the index of its class in <see cref="Classes"/> (−1 for unlabelled text a teacher labels).</summary>
    public abstract IIndexedDataset<ClassificationExample> Sequences(SplitName split, int seqLen);

    /// <summary>Sentences with a tag per word (on its first token).</summary>
    public abstract IIndexedDataset<TokenClassificationExample> Tags(SplitName split, int seqLen);

    /// <summary>"[bos] prompt response [eos]" with the loss on the response.</summary>
    public abstract IIndexedDataset<InstructionExample> Instructions(SplitName split, int seqLen, ulong seed);

    /// <summary>Preference pairs, each side cut to <paramref name="seqLen"/> tokens.</summary>
    public abstract IIndexedDataset<ComparisonExample> Comparisons(SplitName split, int seqLen, ulong seed);

    /// <summary>The word a text-to-text model writes for each class, as ids ending in EOS (leading space: the common word token).</summary>
    public static IReadOnlyList<int[]> LabelWords(ITextTokenizer tokenizer, IReadOnlyList<string> classes) =>
        classes.Select(c => (int[])[.. tokenizer.Encode(" " + c.Replace('_', ' ')), SpecialTokens.Eos]).ToList();
}

/// <summary>The bundled Brown Corpus and SpamAssassin: documents cut into sentences, derived tasks, Brown's sub-vocabulary.</summary>
public sealed class BuiltinStageData : StageData
{
    private readonly BrownData _brown;
    private readonly Func<DatasetSplit<Data.Corpora.SpamMessage>> _spam;
    private readonly ClassificationTask? _task;

    public BuiltinStageData(BrownData brown, ClassificationTask? task, Func<DatasetSplit<Data.Corpora.SpamMessage>> spam)
        : base(brown.Vocabulary, ClassesOf(brown, task)) => (_brown, _task, _spam) = (brown, task, spam);

    private static IReadOnlyList<string> ClassesOf(BrownData brown, ClassificationTask? task) => task switch
    {
        ClassificationTask.Genre => brown.Train.Genres,
        ClassificationTask.Spam => ["ham", "spam"],
        ClassificationTask.Pos => brown.Tags.Tags,
        _ => [],
    };

    public override IIndexedDataset<LmExample> Lm(SplitName split, int seqLen, ulong seed) => new PackedLmDataset(_brown[split], seqLen, seed);

    public override IIndexedDataset<SentencePairExample> SentencePairs(SplitName split, SentencePairTask task, int seqLen, ulong seed) =>
        new SentencePairDataset(_brown[split], task, seqLen, seed);

    public override IIndexedDataset<ClassificationExample> Sequences(SplitName split, int seqLen) => _task switch
    {
        ClassificationTask.Genre => new GenreClassificationDataset(_brown[split], seqLen),
        ClassificationTask.Spam => new SpamClassificationDataset(_spam()[split], _brown.Vocabulary, seqLen),
        _ => throw new NotSupportedException($"{(_task is { } t ? SpecNames.Of(t) : "no task")} is not a sequence task of the built-in corpora"),
    };

    public override IIndexedDataset<TokenClassificationExample> Tags(SplitName split, int seqLen) => new PosTaggingDataset(_brown[split], _brown.Tags, seqLen);

    public override IIndexedDataset<InstructionExample> Instructions(SplitName split, int seqLen, ulong seed) => new InstructionDataset(_brown[split], seqLen, seed);

    public override IIndexedDataset<ComparisonExample> Comparisons(SplitName split, int seqLen, ulong seed) =>
        new TruncatedPairs(new ComparisonDataset(_brown[split], seed), seqLen);
}

/// <summary>The user's files, tokenized once into memory-mapped shards (<see cref="PreparedData"/>).</summary>
public sealed class FileStageData : StageData
{
    private readonly PreparedData _prepared;

    /// <param name="classes">The model's classes (from its checkpoint, or this data's training labels for a new classifier).</param>
    public FileStageData(PreparedData prepared, ITextTokenizer tokenizer, IReadOnlyList<string> classes) : base(tokenizer, classes)
    {
        _prepared = prepared;
    }

    /// <summary>Where the shards live (the content-addressed cache entry).</summary>
    public PreparedData Prepared => _prepared;

    private ShardSplit Split(SplitName split) => split switch
    {
        SplitName.Train => _prepared.Train,
        SplitName.Validation => _prepared.Validation,
        _ => _prepared.Test,
    };

    public override IIndexedDataset<LmExample> Lm(SplitName split, int seqLen, ulong seed) => new ShardLmDataset(Split(split), seqLen);

    public override IIndexedDataset<SentencePairExample> SentencePairs(SplitName split, SentencePairTask task, int seqLen, ulong seed) =>
        throw new NotSupportedException("sentence-pair tasks (nsp, sop) need documents cut into sentences, which only the built-in corpora have");

    public override IIndexedDataset<ClassificationExample> Sequences(SplitName split, int seqLen)
    {
        if (!Split(split).HasColumn("label")) return new ShardTextDataset(Split(split), seqLen);
        return LabelMap.Onto(new ShardClassificationDataset(Split(split), seqLen), _prepared.Labels, Classes);
    }

    public override IIndexedDataset<TokenClassificationExample> Tags(SplitName split, int seqLen) =>
        LabelMap.OntoTags(new ShardTokenTagDataset(Split(split), seqLen), _prepared.Labels, Classes);

    public override IIndexedDataset<InstructionExample> Instructions(SplitName split, int seqLen, ulong seed) => new ShardInstructionDataset(Split(split), seqLen, Tokenizer);

    public override IIndexedDataset<ComparisonExample> Comparisons(SplitName split, int seqLen, ulong seed) => new ShardComparisonDataset(Split(split), seqLen, Tokenizer);
}
