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
/// Builds the <see cref="Objective"/> of a training stage: its data (<see cref="StageInputs"/>), its model (fresh, or
/// initialised from earlier stages' checkpoints) and its loss. The one place objectives meet model classes.
/// </summary>
public static class ObjectiveFactory
{
    public static Objective Create(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        ulong seed = (ulong)job.StageSeed(stage);
        int seqLen = stage.Data.SeqLen;
        var split = ToSplit(stage.Data.Split);
        const SplitName valid = SplitName.Validation;
        // A distill stage trains on its label stage's records, with the teacher's classes.
        var data = stage.Kind == StageKind.Distill
            ? StageInputs.Data(job, LabelStageOf(job, stage), artifacts, classesOf: ClassifierRoot(job, stage))
            : StageInputs.Data(job, stage, artifacts);
        int vocab = data.Tokenizer.Size;
        var model = BuildModule(job, stage, data.Tokenizer, data.Classes, artifacts.DataRoot);
        Initialise(model, job, stage, artifacts, device);
        StageInputs.Record(artifacts, data);

        // data.max_examples caps every example set the stage reads, held-out ones included: a quick run
        // (max_examples 64) must not spend minutes scoring a full validation split.
        IIndexedDataset<T> Cap<T>(IIndexedDataset<T> d) => Capped(d, stage.Data.MaxExamples);
        // data.train_examples samples the training set only; held-out sets are read whole (up to max_examples).
        IIndexedDataset<T> Train<T>(IIndexedDataset<T> d) => stage.Data.TrainExamples is int n ? new Sampled<T>(Cap(d), n, seed) : Cap(d);
        IIndexedDataset<ClassificationExample> Sequences(SplitName s, ClassificationTask task, ModelFamily family) => LabelledSequences(data, task, s, seqLen, family);
        switch (stage.Objective, model)
        {
            case (MlmSpec mlm, EncoderForPreTraining encoder) when mlm.SentenceTask == SentenceTask.None:
                return new MaskedLmObjective(encoder, device, vocab, mlm.MaskProb, seed,
                    Train(data.Lm(split, seqLen, seed)), Cap(data.Lm(valid, seqLen, seed)), null, null);
            case (MlmSpec mlm, EncoderForPreTraining encoder):
                var pairTask = mlm.SentenceTask == SentenceTask.Nsp ? SentencePairTask.NextSentence : SentencePairTask.SentenceOrder;
                return new MaskedLmObjective(encoder, device, vocab, mlm.MaskProb, seed, null, null,
                    Train(data.SentencePairs(split, pairTask, seqLen, seed)), Cap(data.SentencePairs(valid, pairTask, seqLen, seed)));
            case (ClmSpec, GptLanguageModel gpt):
                return new CausalLmObjective(gpt, device, Train(data.Lm(split, seqLen, seed)), Cap(data.Lm(valid, seqLen, seed)));
            case (PlmSpec plm, XLNetLanguageModel xlnet):
                return new XLNetPermutationObjective(xlnet, device, plm.K, seed, Train(data.Lm(split, seqLen, seed)), Cap(data.Lm(valid, seqLen, seed)));
            case (SpanCorruptionSpec sc, T5Model t5):
                return new T5SpanCorruptionObjective(t5, device, sc.NoiseDensity, sc.MeanSpan, seed, Train(data.Lm(split, seqLen, seed)), Cap(data.Lm(valid, seqLen, seed)));
            case (ClassificationSpec c, T5TextClassifier t5):
                return new T5TextToTextObjective(t5, device, StageData.LabelWords(data.Tokenizer, data.Classes),
                    Train(Sequences(split, c.Task, ModelFamily.T5)), Cap(Sequences(valid, c.Task, ModelFamily.T5)));
            case (RtdSpec rtd, ElectraForPreTraining electra):
                return new ElectraObjective(electra, device, vocab, rtd.MaskProb, seed, Train(data.Lm(split, seqLen, seed)), Cap(data.Lm(valid, seqLen, seed)));
            case (ClassificationSpec, TokenClassifier tagger):
                return new TokenClassificationObjective(tagger, device, Train(data.Tags(split, seqLen)), Cap(data.Tags(valid, seqLen)));
            case (ClassificationSpec c, SequenceClassifier classifier):
                return new SequenceClassificationObjective(classifier, device, data.Classes.Count,
                    Train(Sequences(split, c.Task, stage.Model.Family)), Cap(Sequences(valid, c.Task, stage.Model.Family)));
            case (SftSpec, GptLanguageModel gpt):
                return new SftObjective(gpt, device, Train(data.Instructions(split, seqLen, seed)), Cap(data.Instructions(valid, seqLen, seed)));
            case (RewardSpec, RewardModel reward):
                return new RewardObjective(reward, device, Train(data.Comparisons(split, seqLen, seed)), Cap(data.Comparisons(valid, seqLen, seed)));
            case (DpoSpec dpo, GptLanguageModel policy):
            {
                var reference = LoadTrained(job, Required(job, stage.Inputs.Reference, stage, "reference"), artifacts, device);
                if (reference is not GptLanguageModel referenceLm) throw new InvalidOperationException($"stage '{stage.Inputs.Reference}' is not a GPT language model");
                referenceLm.eval();
                foreach (var p in referenceLm.parameters()) p.requires_grad = false;
                return new DpoObjective(policy, referenceLm, device, dpo.Beta, Train(data.Comparisons(split, seqLen, seed)), Cap(data.Comparisons(valid, seqLen, seed)));
            }
            case (DistillSpec d, IClassifier student):
            {
                var labelStage = LabelStageOf(job, stage);
                var (header, labels) = LabelFile.Read(artifacts.Of(labelStage.Name).Labels);
                var task = TaskOfLabels(job, labelStage);
                // The label stage labelled its (possibly capped) split; the student reads the same examples, in its own format.
                var family = stage.Model.Family;
                var labelled = Capped(LabelledSequences(data, task, Enum.Parse<SplitName>(header.Split, ignoreCase: true), labelStage.Data.SeqLen, family), labelStage.Data.MaxExamples);
                // Validation scores the student against gold labels: the held-out split of the data its teacher was fine-tuned on.
                var gold = StageInputs.Data(job, ClassifierRoot(job, stage), artifacts);
                return new DistillObjective(student, device, data.Classes.Count,
                    Distillation(d), labelled, labels, Cap(LabelledSequences(gold, task, valid, seqLen, family)));
            }
            default:
                model.Dispose();
                throw new NotSupportedException($"stage '{stage.Name}': kind {stage.Kind} with objective {stage.Objective?.Kind.ToString() ?? "none"} does not train");
        }
    }

    /// <summary>One split of a sequence-classification data set as <paramref name="family"/> reads it: T5 as text-to-text ("genre: …").</summary>
    public static IIndexedDataset<ClassificationExample> LabelledSequences(StageData data, ClassificationTask task, SplitName split, int seqLen, ModelFamily family) =>
        family == ModelFamily.T5 ? new TextToTextDataset(data.Sequences(split, seqLen), data.Tokenizer.Encode(SpecNames.Of(task) + ":"), seqLen) : data.Sequences(split, seqLen);

    /// <summary>The first <paramref name="max"/> examples of <paramref name="data"/> (<c>data.max_examples</c>), or all of them.</summary>
    public static IIndexedDataset<T> Capped<T>(IIndexedDataset<T> data, int? max) => max is int n ? new Limited<T>(data, n) : data;

    /// <summary>The module a stage trains, freshly initialised on the CPU, for a vocabulary of <paramref name="tokenizer"/>'s size and <paramref name="classes"/>.</summary>
    /// <param name="dataRoot">where an <c>hf:</c> init lineage's checkpoint is; its config fixes fields a spec does not state (<see cref="HfImport.Align"/>)</param>
    public static nn.Module BuildModule(JobSpec job, StageSpec stage, Data.Tokenization.ITextTokenizer tokenizer, IReadOnlyList<string> classes, string? dataRoot = null)
    {
        int vocab = tokenizer.Size;
        // A sub-vocabulary keeps at most vocab_size ids (a small corpus may have fewer distinct tokens); any other
        // tokenizer has exactly its size, and a spec that says otherwise is refused rather than silently resized.
        if (job.TokenizerOrDefault.Kind != TokenizerKind.Subvocab && stage.Model.VocabSize != 0 && stage.Model.VocabSize != vocab)
            throw new InvalidOperationException($"stage '{stage.Name}': model.vocab_size {stage.Model.VocabSize} differs from the tokenizer's {vocab} ids ({tokenizer.Identity}); omit vocab_size to take the tokenizer's");
        var config = HfImport.Align(ModelBuilder.Config(stage.Model, stage.Objective, vocab), job, stage, dataRoot);
        Backbone Backbone() => ModelFactory.CreateBackbone(config);
        // A GPT classifier exported to Hugging Face is GPT2ForSequenceClassification, whose score layer has no bias; the
        // encoders' *ForSequenceClassification keep theirs (docs/interop.md).
        bool HeadBias() => stage.Outputs.Export is not ExportFormat.Hf || config is not GptConfig;
        int Classes() => classes.Count > 0 ? classes.Count : throw new InvalidOperationException($"stage '{stage.Name}': a classifier needs its classes, and none are known");
        // T5 classifies text-to-text: the whole encoder-decoder, scoring one label word per class.
        T5TextClassifier TextToText() => new((T5Model)ModelFactory.Create(config), StageData.LabelWords(tokenizer, classes));
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
            (StageKind.Finetune, ClassificationSpec) when config is T5Config => TextToText(),
            (StageKind.Distill, _) when config is T5Config => TextToText(),
            (StageKind.Finetune, ClassificationSpec c) when c.Task.PerToken() => new TokenClassifier(Backbone(), Classes()),
            (StageKind.Finetune, ClassificationSpec c) => new SequenceClassifier(Backbone(), Classes(), Pooling(c.Pooling), HeadBias()),
            (StageKind.Reward, _) => new RewardModel(Backbone()),
            (StageKind.Distill, _) => new SequenceClassifier(Backbone(), Classes(), headBias: HeadBias()),
            _ => throw new NotSupportedException($"stage '{stage.Name}' ({stage.Kind}) has no model of its own"),
        };
    }

    /// <summary>The module a stage trains on <paramref name="data"/> (its tokenizer and classes), freshly initialised on the CPU.</summary>
    public static nn.Module BuildModule(JobSpec job, StageSpec stage, StageData data) => BuildModule(job, stage, data.Tokenizer, data.Classes);

    /// <summary>The module a stage trains on the Brown Corpus, freshly initialised on the CPU.</summary>
    public static nn.Module BuildModule(JobSpec job, StageSpec stage, BrownData brown) =>
        BuildModule(job, stage, new BuiltinStageData(brown, Lineage.TaskOf(job, stage), () => DataCatalog.Shared.Spam((ulong)job.Seed)));

    private static readonly object GlobalGenerator = new();

    /// <summary>Rebuilds a finished stage's module and loads its final weights (label, evaluate, DPO reference, init).</summary>
    public static nn.Module LoadTrained(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        var (tokenizer, classes) = StageInputs.OfTrained(job, stage, artifacts);
        var module = BuildModule(job, stage, tokenizer, classes, artifacts.DataRoot);
        ModelBuilder.LoadFinal(module, artifacts.Of(stage.Name));
        module.to(device);
        return module;
    }

    /// <summary>The spec's "alpha·soft + (1 − alpha)·hard" (soft = KL at T, or logit MSE when <c>mse</c>) as loss options.</summary>
    public static DistillationOptions Distillation(DistillSpec d) => d.Mse
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

    /// <summary>The label stage a distill stage learns from (<c>inputs.labels</c> or <c>data.from</c>).</summary>
    public static StageSpec LabelStageOf(JobSpec job, StageSpec stage) =>
        Required(job, stage.Inputs.Labels ?? (stage.Data.Source as StageOutput)?.Stage, stage, "labels");

    /// <summary>The task a label stage's teacher was fine-tuned on.</summary>
    public static ClassificationTask TaskOfLabels(JobSpec job, StageSpec labelStage) =>
        Lineage.TaskOf(job, labelStage) ?? throw new InvalidOperationException($"label stage '{labelStage.Name}': its teacher is not a classifier");

    /// <summary>The fine-tuning stage at the root of a chain of teachers (label → teacher, distill → labels → teacher…): whose classes and gold data the chain uses.</summary>
    public static StageSpec ClassifierRoot(JobSpec job, StageSpec stage)
    {
        var seen = new HashSet<string>();
        var s = stage;
        while (s.Objective is not ClassificationSpec && seen.Add(s.Name))
        {
            var next = s.Kind switch
            {
                StageKind.Label => s.Inputs.Teacher,
                StageKind.Distill => s.Inputs.Teacher ?? s.Inputs.Labels ?? (s.Data.Source as StageOutput)?.Stage,
                StageKind.Evaluate => s.Inputs.Init ?? s.Inputs.Teacher,
                _ => null,
            };
            s = (next is null ? null : job.Stage(next)) ?? throw new InvalidOperationException($"stage '{stage.Name}': no classifier was fine-tuned upstream of it");
        }
        return s;
    }

    public static StageSpec Required(JobSpec job, string? name, StageSpec stage, string what) =>
        (name is null ? null : job.Stage(name)) ?? throw new InvalidOperationException($"stage '{stage.Name}': needs {what} from an earlier stage");

    /// <summary>The corpus split a <c>data.split</c> reads; <c>all</c> reads the training split (held-out splits stay unseen).</summary>
    public static SplitName ToSplit(DataSplit split) => split switch
    {
        DataSplit.Validation => SplitName.Validation,
        DataSplit.Test => SplitName.Test,
        _ => SplitName.Train,
    };

    /// <summary>Loads <c>inputs.init</c> into a fresh model, then moves it to its device.</summary>
    private static void Initialise(nn.Module model, JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device)
    {
        if (stage.Inputs.HfInit is not null)
        {
            HfImport.Into(model, job, stage, artifacts.DataRoot);
        }
        else if (stage.Inputs.Init is string init)
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
