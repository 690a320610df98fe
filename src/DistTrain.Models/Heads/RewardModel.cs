using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Scalar reward head: the pooled state (see <see cref="Pooling"/>) mapped H→1.</summary>
public sealed class RewardHead : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear score;
    private readonly PoolingMode pooling;

    public RewardHead(int hidden, bool causal, double initStd) : base(nameof(RewardHead))
    {
        pooling = Pooling.Default(causal);
        score = Init.Linear(nn.Linear(hidden, 1), initStd);
        RegisterComponents();
    }

    /// <summary>hidden (B, T, H), attentionMask (B, T)? → rewards (B).</summary>
    public override Tensor forward(Tensor hidden, Tensor? attentionMask)
        => score.forward(Pooling.Pool(hidden, attentionMask, pooling)).squeeze(-1); // (B)
}

/// <summary>A backbone plus <see cref="RewardHead"/>, trained with <see cref="PreferenceLosses.BradleyTerry"/>.</summary>
public sealed class RewardModel : nn.Module<Tensor, Tensor?, Tensor?, Tensor>, IHeadOnBackbone
{
    private readonly Backbone backbone;
    private readonly RewardHead head;

    public RewardModel(Backbone backbone) : base(nameof(RewardModel))
    {
        this.backbone = backbone;
        head = new RewardHead(backbone.Config.HiddenSize, backbone.Config.PoolsLastToken, backbone.Config.InitStd);
        RegisterComponents();
    }

    /// <summary>The encoder or decoder under the head.</summary>
    public Backbone Backbone => backbone;

    /// <summary>ids (B, T), attentionMask (B, T)?, segments (B, T)? → rewards (B).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
        => head.forward(backbone.forward(ids, attentionMask, segments), attentionMask);
}
