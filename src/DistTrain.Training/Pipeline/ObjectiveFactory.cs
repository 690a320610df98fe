using DistTrain.Contracts.Specs;
using DistTrain.Data;
using DistTrain.Data.Datasets;
using DistTrain.Data.Splits;
using DistTrain.Models;
using DistTrain.Training.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>A dataset cut to its first <paramref name="count"/> examples (<c>data.max_examples</c>).</summary>
public sealed class Limited<T>(IIndexedDataset<T> inner, int count) : IIndexedDataset<T>
{
    public int Count { get; } = Math.Min(count, inner.Count);
    public T this[int index] => (uint)index < (uint)Count ? inner[index] : throw new ArgumentOutOfRangeException(nameof(index));
}

/// <summary>
/// A seeded random sample of <paramref name="count"/> examples of <paramref name="inner"/>, in their original order
/// (<c>data.train_examples</c>). The sample depends only on the seed and the dataset size, so every rank of a group
/// and every resume draws the same one.
/// </summary>
public sealed class Sampled<T> : IIndexedDataset<T>
{
    private readonly IIndexedDataset<T> _inner;
    private readonly int[] _indices;

    public Sampled(IIndexedDataset<T> inner, int count, ulong seed)
    {
        _inner = inner;
        var all = Enumerable.Range(0, inner.Count).ToArray();
        SeededRandom.For(seed, (ulong)inner.Count, stream: SampleStream).Shuffle(all);
        _indices = all.Take(Math.Min(count, inner.Count)).Order().ToArray();
    }

    public int Count => _indices.Length;
    public T this[int index] => _inner[_indices[index]];

    private const ulong SampleStream = 0x54524E53;   // "TRNS": apart from the sampler's and the data layer's streams
}

/// <summary>
/// Preference pairs cut to <c>data.seq_len</c> tokens each: a pair of two Brown sentences can exceed the model's
/// positions, and every other dataset already honours the sequence length.
/// </summary>
public sealed class TruncatedPairs(IIndexedDataset<ComparisonExample> inner, int length) : IIndexedDataset<ComparisonExample>
{
    public int Count => inner.Count;
    public ComparisonExample this[int index]
    {
        get
        {
            var ex = inner[index];
            return ex.Chosen.Length <= length && ex.Rejected.Length <= length ? ex
                : ex with { Chosen = ex.Chosen[..Math.Min(length, ex.Chosen.Length)], Rejected = ex.Rejected[..Math.Min(length, ex.Rejected.Length)] };
        }
    }
}

/// <summary>
/// Builds the <see cref="Objective"/> of a training stage: its data (from the job's corpus splits), its model (fresh,
/// or initialised from earlier stages' checkpoints) and its loss. The one place stage kinds meet model families.
/// </summary>
public static class ObjectiveFactory
{
    public static Objective Create(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        var brown = DataCatalog.Shared.Brown((ulong)job.Seed, stage.Model.VocabSize);
        ulong seed = (ulong)job.StageSeed(stage);
        int seqLen = stage.Data.SeqLen;
        var split = ToSplit(stage.Data.Split);
        var train = brown[split];
        var valid = brown.Validation;
        int vocab = brown.Vocabulary.Size;
        var model = BuildModule(job, stage, brown);
        Initialise(model, job, stage, artifacts, device);

        // data.max_examples caps every example set the stage reads, held-out ones included: a quick run
        // (max_examples 64) must not spend minutes scoring a full validation split.
        IIndexedDataset<T> Cap<T>(IIndexedDataset<T> d) => Capped(d, stage.Data.MaxExamples);
        // data.train_examples samples the training set only; held-out sets are read whole (up to max_examples).
        IIndexedDataset<T> Train<T>(IIndexedDataset<T> d) => stage.Data.TrainExamples is int n ? new Sampled<T>(Cap(d), n, seed) : Cap(d);
        switch (stage.Objective, model)
        {
            case (MlmObjective mlm, EncoderForPreTraining encoder) when mlm.SentenceTask == SentenceTask.None:
                return new MaskedLmObjective(encoder, device, vocab, mlm.MaskProb, seed,
                    Train(new PackedLmDataset(train, seqLen, seed)), Cap(new PackedLmDataset(valid, seqLen, seed)), null, null);
            case (MlmObjective mlm, EncoderForPreTraining encoder):
                var pairTask = mlm.SentenceTask == SentenceTask.Nsp ? SentencePairTask.NextSentence : SentencePairTask.SentenceOrder;
                return new MaskedLmObjective(encoder, device, vocab, mlm.MaskProb, seed, null, null,
                    Train(new SentencePairDataset(train, pairTask, seqLen, seed)), Cap(new SentencePairDataset(valid, pairTask, seqLen, seed)));
            case (ClmObjective, GptLanguageModel gpt):
                return new CausalLmObjective(gpt, device, Train(new PackedLmDataset(train, seqLen, seed)), Cap(new PackedLmDataset(valid, seqLen, seed)));
            case (PlmObjective plm, XLNetLanguageModel xlnet):
                return new XLNetPermutationObjective(xlnet, device, plm.K, seed, Train(new PackedLmDataset(train, seqLen, seed)), Cap(new PackedLmDataset(valid, seqLen, seed)));
            case (Contracts.Specs.SpanCorruptionObjective sc, T5Model t5):
                return new T5SpanCorruptionObjective(t5, device, sc.NoiseDensity, sc.MeanSpan, seed, Train(new PackedLmDataset(train, seqLen, seed)), Cap(new PackedLmDataset(valid, seqLen, seed)));
            case (ClassificationObjective c, T5TextClassifier t5):
                return new T5TextToTextObjective(t5, device, LabelWords(c.Task, brown),
                    Train(Classification(job, c.Task, split, seqLen, brown, stage.Model.Family)), Cap(Classification(job, c.Task, SplitName.Validation, seqLen, brown, stage.Model.Family)));
            case (RtdObjective rtd, ElectraForPreTraining electra):
                return new ElectraObjective(electra, device, vocab, rtd.MaskProb, seed, Train(new PackedLmDataset(train, seqLen, seed)), Cap(new PackedLmDataset(valid, seqLen, seed)));
            case (ClassificationObjective, TokenClassifier tagger):
                return new TokenClassificationObjective(tagger, device, Train(new PosTaggingDataset(train, brown.Tags, seqLen)), Cap(new PosTaggingDataset(valid, brown.Tags, seqLen)));
            case (ClassificationObjective c, SequenceClassifier classifier):
                return new SequenceClassificationObjective(classifier, device, ClassCount(c.Task, brown),
                    Train(Classification(job, c.Task, split, seqLen, brown, stage.Model.Family)), Cap(Classification(job, c.Task, SplitName.Validation, seqLen, brown, stage.Model.Family)));
            case (Contracts.Specs.SftObjective, GptLanguageModel gpt):
                return new Objectives.SftObjective(gpt, device, Train(new InstructionDataset(train, seqLen, seed)), Cap(new InstructionDataset(valid, seqLen, seed)));
            case (Contracts.Specs.RewardObjective, RewardModel reward):
                return new Objectives.RewardObjective(reward, device, Train(Comparisons(train, seed, seqLen)), Cap(Comparisons(valid, seed, seqLen)));
            case (Contracts.Specs.DpoObjective dpo, GptLanguageModel policy):
            {
                var reference = LoadTrained(job, Required(job, stage.Inputs.Reference, stage, "reference"), artifacts, device);
                if (reference is not GptLanguageModel referenceLm) throw new InvalidOperationException($"stage '{stage.Inputs.Reference}' is not a GPT language model");
                referenceLm.eval();
                foreach (var p in referenceLm.parameters()) p.requires_grad = false;
                return new Objectives.DpoObjective(policy, referenceLm, device, dpo.Beta, Train(Comparisons(train, seed, seqLen)), Cap(Comparisons(valid, seed, seqLen)));
            }
            case (Contracts.Specs.DistillObjective d, IClassifier student):
            {
                var labelStage = LabelStageOf(job, stage);
                var (header, labels) = LabelFile.Read(artifacts.Of(labelStage.Name).Labels);
                var task = TaskOfLabels(job, labelStage);
                // The label stage labelled its (possibly capped) split; the student reads the same examples, in its own format.
                var family = stage.Model.Family;
                var labelled = Capped(Classification(job, task, Enum.Parse<SplitName>(header.Split, ignoreCase: true), labelStage.Data.SeqLen, brown, family), labelStage.Data.MaxExamples);
                return new Objectives.DistillObjective(student, device, ClassCount(task, brown),
                    Distillation(d), labelled, labels, Cap(Classification(job, task, SplitName.Validation, seqLen, brown, family)));
            }
            default:
                model.Dispose();
                throw new NotSupportedException($"stage '{stage.Name}': kind {stage.Kind} with objective {stage.Objective?.Kind.ToString() ?? "none"} does not train");
        }
    }

    /// <summary>The first <paramref name="max"/> examples of <paramref name="data"/> (<c>data.max_examples</c>), or all of them.</summary>
    public static IIndexedDataset<T> Capped<T>(IIndexedDataset<T> data, int? max) => max is int n ? new Limited<T>(data, n) : data;

    /// <summary>The module a stage trains, freshly initialised on the CPU; no data is read.</summary>
    public static nn.Module BuildModule(JobSpec job, StageSpec stage, BrownData brown)
    {
        int vocab = brown.Vocabulary.Size;
        var config = ModelBuilder.Config(stage.Model, stage.Objective, vocab);
        Backbone Backbone() => ModelFactory.CreateBackbone(config);
        // T5 classifies text-to-text: the whole encoder-decoder, scoring one label word per class.
        T5TextClassifier TextToText(ClassificationTask task) => new((T5Model)ModelFactory.Create(config), LabelWords(task, brown));
        // Initial weights are a function of the stage seed: every rank of a group starts from identical replicas,
        // and a single-process run is comparable with any data-parallel one. Initialisation draws from torch's one
        // global generator, so two device threads of a process must not build models at the same time.
        lock (GlobalGenerator)
        {
            torch.random.manual_seed(job.StageSeed(stage));
            return Build();
        }

        nn.Module Build() => (stage.Kind, stage.Objective) switch
        {
            (StageKind.Pretrain, _) => ModelFactory.Create(config),
            (StageKind.Sft or StageKind.Dpo, _) => ModelFactory.Create(config),
            (StageKind.Finetune, ClassificationObjective c) when config is T5Config => TextToText(c.Task),
            (StageKind.Distill, _) when config is T5Config => TextToText(TaskOfLabels(job, LabelStageOf(job, stage))),
            (StageKind.Finetune, ClassificationObjective { Task: ClassificationTask.Pos }) => new TokenClassifier(Backbone(), brown.Tags.Tags.Count),
            (StageKind.Finetune, ClassificationObjective c) => new SequenceClassifier(Backbone(), ClassCount(c.Task, brown), Pooling(c.Pooling)),
            (StageKind.Reward, _) => new RewardModel(Backbone()),
            (StageKind.Distill, _) => new SequenceClassifier(Backbone(), ClassCount(TaskOfLabels(job, LabelStageOf(job, stage)), brown)),
            _ => throw new NotSupportedException($"stage '{stage.Name}' ({stage.Kind}) has no model of its own"),
        };
    }

    private static readonly object GlobalGenerator = new();

    /// <summary>Rebuilds a finished stage's module and loads its final weights (label, evaluate, DPO reference, init).</summary>
    public static nn.Module LoadTrained(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        var module = BuildModule(job, stage, DataCatalog.Shared.Brown((ulong)job.Seed, stage.Model.VocabSize));
        ModelBuilder.LoadFinal(module, artifacts.Of(stage.Name));
        module.to(device);
        return module;
    }

    /// <summary>The spec's "alpha·soft + (1 − alpha)·hard" (soft = KL at T, or logit MSE when <c>mse</c>) as loss options.</summary>
    public static DistillationOptions Distillation(Contracts.Specs.DistillObjective d) => d.Mse
        ? new DistillationOptions(d.Temperature, Alpha: 1 - d.Alpha, Gamma: d.Alpha, SoftWeight: 0)
        : new DistillationOptions(d.Temperature, Alpha: 1 - d.Alpha, Gamma: 0, SoftWeight: d.Alpha);

    /// <summary>The model's pooling for a spec's (null: the family's own).</summary>
    private static PoolingMode? Pooling(SequencePooling? pooling) => pooling switch
    {
        null => null,
        SequencePooling.Cls => PoolingMode.First,
        SequencePooling.Last => PoolingMode.Last,
        SequencePooling.Mean => PoolingMode.Mean,
        _ => throw new ArgumentOutOfRangeException(nameof(pooling), pooling, null),
    };

    /// <summary>One split of a sequence-classification task, as <paramref name="family"/> reads it: T5 as text-to-text ("genre: …").</summary>
    public static IIndexedDataset<ClassificationExample> Classification(JobSpec job, ClassificationTask task, SplitName split, int seqLen, BrownData brown, ModelFamily family)
    {
        IIndexedDataset<ClassificationExample> data = task switch
        {
            ClassificationTask.Genre => new GenreClassificationDataset(brown[split], seqLen),
            ClassificationTask.Spam => new SpamClassificationDataset(DataCatalog.Shared.Spam((ulong)job.Seed)[split], brown.Vocabulary, seqLen),
            _ => throw new NotSupportedException($"{task} is not a sequence classification task"),
        };
        return family == ModelFamily.T5 ? new TextToTextDataset(data, brown.Vocabulary.Encode(SpecNames.Of(task) + ":"), seqLen) : data;
    }

    /// <summary>
    /// The word a text-to-text model writes for each class, in label order, as token ids ending in EOS: the genre names
    /// ("news", "belles lettres", …) or "ham"/"spam". Leading spaces make them the corpus's common word tokens.
    /// </summary>
    public static IReadOnlyList<int[]> LabelWords(ClassificationTask task, BrownData brown)
    {
        IEnumerable<string> words = task switch
        {
            ClassificationTask.Genre => brown.Train.Genres.Select(g => g.Replace('_', ' ')),
            ClassificationTask.Spam => ["ham", "spam"],
            _ => throw new NotSupportedException($"{task} has no label words: text-to-text classifies whole sequences"),
        };
        return words.Select(w => (int[])[.. brown.Vocabulary.Encode(" " + w), Data.Tokenization.SpecialTokens.Eos]).ToList();
    }

    /// <summary>Preference pairs of one split, each side cut to <paramref name="seqLen"/> tokens.</summary>
    public static IIndexedDataset<ComparisonExample> Comparisons(EncodedCorpus corpus, ulong seed, int seqLen) =>
        new TruncatedPairs(new ComparisonDataset(corpus, seed), seqLen);

    public static int ClassCount(ClassificationTask task, BrownData brown) => task switch
    {
        ClassificationTask.Genre => brown.Train.Genres.Count,
        ClassificationTask.Spam => 2,
        ClassificationTask.Pos => brown.Tags.Tags.Count,
        _ => throw new NotSupportedException(task.ToString()),
    };

    /// <summary>The label stage a distill stage learns from (<c>inputs.labels</c> or <c>data.from</c>).</summary>
    public static StageSpec LabelStageOf(JobSpec job, StageSpec stage) =>
        Required(job, stage.Inputs.Labels ?? (stage.Data.Source as StageOutput)?.Stage, stage, "labels");

    /// <summary>The task a label stage's teacher was fine-tuned on.</summary>
    public static ClassificationTask TaskOfLabels(JobSpec job, StageSpec labelStage)
    {
        var teacher = Required(job, labelStage.Inputs.Teacher, labelStage, "teacher");
        return teacher.Objective is ClassificationObjective c ? c.Task
            : throw new InvalidOperationException($"label stage '{labelStage.Name}': teacher '{teacher.Name}' is not a classifier");
    }

    public static StageSpec Required(JobSpec job, string? name, StageSpec stage, string what) =>
        (name is null ? null : job.Stage(name)) ?? throw new InvalidOperationException($"stage '{stage.Name}': needs {what} from an earlier stage");

    public static SplitName ToSplit(DataSplit split) => split switch
    {
        DataSplit.Validation => SplitName.Validation,
        DataSplit.Test => SplitName.Test,
        _ => SplitName.Train,
    };

    /// <summary>Loads <c>inputs.init</c> into a fresh model, then moves it to its device.</summary>
    private static void Initialise(nn.Module model, JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        if (stage.Inputs.Init is string init)
        {
            using var source = LoadTrained(job, Required(job, init, stage, "init"), artifacts, CPU);
            ModelBuilder.Transfer(source, model);
        }
        model.to(device);
        if (stage.Train.FreezeBackbone)
        {
            // On the parameters as they live on the device, before the trainer collects them: frozen weights get no
            // gradient, no all-reduce and no optimizer state.
            if (model is not IHeadOnBackbone probe)
                throw new InvalidOperationException($"stage '{stage.Name}': train.freeze_backbone needs a head on a backbone; {model.GetType().Name} has none");
            probe.FreezeBackbone();
        }
    }
}
