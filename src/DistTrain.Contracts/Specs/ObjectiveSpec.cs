namespace DistTrain.Contracts.Specs;

/// <summary>Name of a training objective as written in YAML (<c>objective: mlm</c> or <c>objective: {kind: mlm}</c>).</summary>
public enum ObjectiveKind { Mlm, Clm, Rtd, Classification, Sft, Reward, Dpo, Distill, Plm, SpanCorruption }

/// <summary>Labelled tasks a classifier can be fine-tuned on: the built-in corpora's three, and the two a user's files can hold.</summary>
public enum ClassificationTask
{
    /// <summary>Brown corpus genre (15 categories), one label per document chunk.</summary>
    Genre,
    /// <summary>SpamAssassin e-mail, spam or ham: two labels.</summary>
    Spam,
    /// <summary>Part of speech per token (Brown tags); a token-level task.</summary>
    Pos,
    /// <summary>A user's labelled texts (<c>text</c> + <c>label</c>); the label set comes from the training split.</summary>
    Sequence,
    /// <summary>A user's tagged words (<c>tokens</c> + <c>tags</c>); the tag set comes from the training split.</summary>
    Token,
}

/// <summary>Facts about each classification task.</summary>
public static class ClassificationTasks
{
    /// <summary>True for tasks with one label per token rather than per sequence.</summary>
    public static bool PerToken(this ClassificationTask task) => task is ClassificationTask.Pos or ClassificationTask.Token;

    /// <summary>The built-in corpus a task is labelled in, or null for tasks read from the user's files.</summary>
    public static CorpusName? Corpus(this ClassificationTask task) => task switch
    {
        ClassificationTask.Genre or ClassificationTask.Pos => CorpusName.Brown,
        ClassificationTask.Spam => CorpusName.Spam,
        _ => null,
    };

    /// <summary>The record schema a user's file must have for the task.</summary>
    public static RecordSchema Schema(this ClassificationTask task) => task.PerToken() ? RecordSchema.TokenTags : RecordSchema.Classification;
}

/// <summary>The sentence-pair task trained beside masked LM: BERT's next-sentence or ALBERT's sentence-order prediction.</summary>
public enum SentenceTask { None, Nsp, Sop }

/// <summary>A stage's loss. A closed set of sealed records so each objective carries only the knobs it uses.</summary>
public abstract record ObjectiveSpec
{
    private protected ObjectiveSpec() { }

    /// <summary>The YAML name of this objective.</summary>
    public abstract ObjectiveKind Kind { get; }
}

/// <summary>Masked language modelling, optionally with a sentence-pair task (nsp for BERT, sop for ALBERT).</summary>
public sealed record MlmSpec(double MaskProb = 0.15, SentenceTask SentenceTask = SentenceTask.None) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Mlm;
}

/// <summary>Causal (next-token) language modelling for decoders.</summary>
public sealed record ClmSpec : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Clm;
}

/// <summary>ELECTRA replaced-token detection; the generator is trained with MLM at <paramref name="MaskProb"/>.</summary>
/// <param name="DiscriminatorWeight">Weight of the discriminator loss against the generator's (50 in the paper).</param>
public sealed record RtdSpec(double MaskProb = 0.15, double DiscriminatorWeight = 50) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Rtd;
}

/// <summary>How a sequence classifier summarises a sequence: [CLS] through a pooler, the last real token, or the mean of real tokens.</summary>
public enum SequencePooling { Cls, Last, Mean }

/// <summary>Supervised classification on a named task; the head is sized from the task's label set.</summary>
/// <param name="Pooling">Sequence tasks only; null is the family's own (last for gpt and xlnet, cls otherwise).</param>
public sealed record ClassificationSpec(ClassificationTask Task, SequencePooling? Pooling = null) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Classification;
}

/// <summary>Supervised fine-tuning: next-token loss on response tokens only.</summary>
public sealed record SftSpec : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Sft;
}

/// <summary>Pairwise (Bradley-Terry) reward-model loss on chosen/rejected pairs.</summary>
public sealed record RewardSpec : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Reward;
}

/// <summary>Direct preference optimisation; <paramref name="Beta"/> sets how far the policy may drift from the reference.</summary>
public sealed record DpoSpec(double Beta = 0.1) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Dpo;
}

/// <summary>Knowledge distillation: <c>alpha</c> × soft-target loss + (1 − alpha) × hard-label loss.</summary>
/// <param name="Temperature">Softmax temperature applied to both teacher and student logits.</param>
/// <param name="Alpha">Weight of the teacher's soft targets, in [0, 1].</param>
/// <param name="Mse">Match logits by mean squared error instead of KL divergence.</param>
/// <param name="MaxParamRatio">If set, validation rejects a student larger than this fraction of the teacher.</param>
public sealed record DistillSpec(double Temperature = 2.0, double Alpha = 0.5, bool Mse = false, double? MaxParamRatio = null) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Distill;
}

/// <summary>
/// XLNet's permutation language modelling: a random factorisation order per sequence, predicting the last 1/<paramref name="K"/>
/// of each order from the tokens before it (K = 6 or 7 in the paper).
/// </summary>
public sealed record PlmSpec(int K = 6) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.Plm;
}

/// <summary>
/// T5's span corruption: random spans covering <paramref name="NoiseDensity"/> of the tokens, of mean length
/// <paramref name="MeanSpan"/>, are replaced by sentinels in the input; the decoder writes each sentinel and its span.
/// </summary>
public sealed record SpanCorruptionSpec(double NoiseDensity = 0.15, double MeanSpan = 3) : ObjectiveSpec
{
    public override ObjectiveKind Kind => ObjectiveKind.SpanCorruption;

    /// <summary>The noise tokens and spans cut from a body of <paramref name="n"/> tokens (between [bos] and [eos]), before
    /// the 32-sentinel cap: round(n·density) noise tokens, at least one and one kept; round(noise / mean_span) spans, at
    /// least one and at most one per noise and per kept token. The one formula the validator and the data share.</summary>
    public (int Noise, int Spans) Cut(int n)
    {
        int noise = Math.Clamp((int)Math.Round(n * NoiseDensity), 1, n - 1);
        int spans = Math.Clamp((int)Math.Round(noise / MeanSpan), 1, Math.Min(noise, n - noise));
        return (noise, spans);
    }
}
