using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Sequence classification head on hidden states: pooled [CLS] (dense+tanh pooler) for encoders, last real token for decoders, or the mean over real tokens.</summary>
public sealed class SequenceClassificationHead : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear? pooler;
    private readonly Dropout dropout;
    private readonly Linear classifier;
    private readonly PoolingMode pooling;

    /// <param name="bias">False: the classifier has no bias, as Hugging Face's GPT2ForSequenceClassification (<c>score</c>) has none.</param>
    public SequenceClassificationHead(int hidden, int numLabels, PoolingMode pooling, double dropout, double initStd, bool bias = true) : base(nameof(SequenceClassificationHead))
    {
        if (numLabels <= 0) throw new ArgumentException($"numLabels must be > 0, got {numLabels}.", nameof(numLabels));
        this.pooling = pooling;
        // BERT fine-tunes through a dense+tanh pooler on [CLS]; GPT classifiers read the last token's state directly.
        if (pooling == PoolingMode.First) pooler = Init.Linear(nn.Linear(hidden, hidden), initStd);
        this.dropout = nn.Dropout(dropout);
        classifier = Init.Linear(nn.Linear(hidden, numLabels, hasBias: bias), initStd);
        Pooling = pooling;
        HasPooler = pooler is not null;
        RegisterComponents();
    }

    /// <summary>How the head summarises the sequence.</summary>
    public PoolingMode Pooling { get; }

    /// <summary>True when a dense+tanh pooler sits between the pooled state and the classifier (pooling First).</summary>
    public bool HasPooler { get; }

    /// <summary>The final linear layer (C, H) with its bias, if any.</summary>
    public Linear Classifier => classifier;

    /// <summary>hidden (B, T, H), attentionMask (B, T) or null → logits (B, C).</summary>
    public override Tensor forward(Tensor hidden, Tensor? attentionMask)
    {
        var pooled = Models.Pooling.Pool(hidden, attentionMask, pooling);       // (B, H)
        if (pooler is not null) pooled = pooler.forward(pooled).tanh();          // (B, H)
        return classifier.forward(dropout.forward(pooled));                      // (B, C)
    }
}

/// <summary>A backbone plus <see cref="SequenceClassificationHead"/>; load pre-trained weights into <see cref="Backbone"/> before fine-tuning.</summary>
public sealed class SequenceClassifier : nn.Module<Tensor, Tensor?, Tensor?, Tensor>, IClassifier, IHeadOnBackbone
{
    private readonly Backbone backbone;
    private readonly SequenceClassificationHead head;

    /// <param name="pooling">Null: the family's own (<see cref="PoolingMode.Last"/> for decoders and XLNet, else [CLS]).</param>
    /// <param name="headBias">False: no classifier bias (the Hugging Face GPT2ForSequenceClassification layout; docs/interop.md).</param>
    public SequenceClassifier(Backbone backbone, int numLabels, PoolingMode? pooling = null, bool headBias = true) : base(nameof(SequenceClassifier))
    {
        var c = backbone.Config;
        this.backbone = backbone;
        head = new SequenceClassificationHead(c.HiddenSize, numLabels, pooling ?? Pooling.Default(c.PoolsLastToken), c.Dropout, c.InitStd, headBias);
        Classes = numLabels;
        RegisterComponents();
    }

    /// <summary>The encoder or decoder under the head.</summary>
    public Backbone Backbone => backbone;

    /// <summary>The head on top of <see cref="Backbone"/>.</summary>
    public SequenceClassificationHead Head => head;

    /// <summary>ids (B, T), attentionMask (B, T)?, segments (B, T)? → logits (B, C).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
        => head.forward(backbone.forward(ids, attentionMask, segments), attentionMask);

    /// <inheritdoc />
    public int Classes { get; }

    /// <inheritdoc />
    public Tensor Classify(Tensor ids, Tensor? attentionMask) => forward(ids, attentionMask, null);
}

/// <summary>
/// A model that scores C classes for a sequence: logits (B, C) whose softmax is its class distribution. A classifier head
/// (<see cref="SequenceClassifier"/>) or a text-to-text model scoring each label word (<see cref="T5TextClassifier"/>); the
/// label, evaluate and distill stages use either through this.
/// </summary>
public interface IClassifier
{
    /// <summary>Number of classes C.</summary>
    int Classes { get; }

    /// <summary>ids (B, T), attentionMask (B, T)? → class scores (B, C) (logits, or per-class log-likelihoods).</summary>
    Tensor Classify(Tensor ids, Tensor? attentionMask);
}
