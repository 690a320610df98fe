using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>BERT/GPT-2 style weight initialisation: N(0, std) weights, zero biases.</summary>
internal static class Init
{
    public static Linear Linear(Linear layer, double std)
    {
        using var _ = no_grad();
        nn.init.normal_(layer.weight!, 0, std);
        if (layer.bias is not null) nn.init.zeros_(layer.bias);
        return layer;
    }

    public static Embedding Embedding(Embedding table, double std)
    {
        using var _ = no_grad();
        nn.init.normal_(table.weight!, 0, std);
        return table;
    }
}
