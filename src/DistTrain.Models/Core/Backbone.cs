using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>
/// A stack that turns ids (B, T), an attention mask (B, T)? and segments (B, T)? into hidden states (B, T, H): the part
/// heads sit on and fine-tuning loads. <see cref="Transformer"/> (absolute positions) and <see cref="XLNetEncoder"/>
/// (relative positions) are the two kinds.
/// </summary>
public abstract class Backbone : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    protected Backbone(string name) : base(name) { }

    /// <summary>The configuration this backbone was built from.</summary>
    public abstract ModelConfig Config { get; }
}
