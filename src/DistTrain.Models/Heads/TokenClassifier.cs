using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Token classification head: dropout then H→C at every position (NER, POS tagging).</summary>
public sealed class TokenClassificationHead : nn.Module<Tensor, Tensor>
{
    private readonly Dropout dropout;
    private readonly Linear classifier;

    public TokenClassificationHead(int hidden, int numLabels, double dropout, double initStd) : base(nameof(TokenClassificationHead))
    {
        if (numLabels <= 0) throw new ArgumentException($"numLabels must be > 0, got {numLabels}.", nameof(numLabels));
        this.dropout = nn.Dropout(dropout);
        classifier = Init.Linear(nn.Linear(hidden, numLabels), initStd);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H) → logits (B, T, C).</summary>
    public override Tensor forward(Tensor hidden) => classifier.forward(dropout.forward(hidden));
}

/// <summary>A backbone plus <see cref="TokenClassificationHead"/>.</summary>
public sealed class TokenClassifier : nn.Module<Tensor, Tensor?, Tensor?, Tensor>, IHeadOnBackbone
{
    private readonly Backbone backbone;
    private readonly TokenClassificationHead head;

    public TokenClassifier(Backbone backbone, int numLabels) : base(nameof(TokenClassifier))
    {
        this.backbone = backbone;
        head = new TokenClassificationHead(backbone.Config.HiddenSize, numLabels, backbone.Config.Dropout, backbone.Config.InitStd);
        RegisterComponents();
    }

    /// <summary>The encoder or decoder under the head.</summary>
    public Backbone Backbone => backbone;

    /// <summary>ids (B, T), attentionMask (B, T)?, segments (B, T)? → logits (B, T, C).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
        => head.forward(backbone.forward(ids, attentionMask, segments));
}
