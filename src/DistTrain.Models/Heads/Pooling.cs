using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>How a sequence-level head summarises hidden states (B, T, H) into (B, H).</summary>
public enum PoolingMode
{
    /// <summary>Position 0 ([CLS]) through BERT's dense+tanh pooler.</summary>
    First,
    /// <summary>The last real token: the only position of a causal model that has seen the whole sequence.</summary>
    Last,
    /// <summary>The mean over real tokens (as sentence encoders do); padding is left out.</summary>
    Mean,
}

/// <summary>Summarises a sequence's hidden states for a sequence-level head: [CLS] for encoders, the last real token for decoders, or the mean.</summary>
public static class Pooling
{
    /// <summary>The family's own summary: the last real token where the model is causal (or reads like one), else [CLS].</summary>
    public static PoolingMode Default(bool poolsLastToken) => poolsLastToken ? PoolingMode.Last : PoolingMode.First;

    /// <summary>hidden (B, T, H), attentionMask (B, T) or null → (B, H) by <paramref name="mode"/>.</summary>
    public static Tensor Pool(Tensor hidden, Tensor? attentionMask, PoolingMode mode) => mode switch
    {
        PoolingMode.First => hidden.select(1, 0),                                           // (B, H)
        PoolingMode.Last => Last(hidden, attentionMask),                                     // (B, H)
        PoolingMode.Mean => Mean(hidden, attentionMask),                                     // (B, H)
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    /// <summary>hidden (B, T, H), attentionMask (B, T) or null → the mean over real positions (B, H).</summary>
    private static Tensor Mean(Tensor hidden, Tensor? attentionMask)
    {
        if (attentionMask is null) return hidden.mean([1]);                                  // (B, H)
        var weights = attentionMask.to(hidden.dtype).unsqueeze(-1);                          // (B, T, 1)
        var counts = weights.sum(1).clamp_min(Scalars.OneReal);                                          // (B, 1)
        return (hidden * weights).sum(1) / counts;                                           // (B, H)
    }

    /// <summary>hidden (B, T, H), attentionMask (B, T) or null → the state of the last real token (B, H).</summary>
    /// <remarks>
    /// A causal model has seen the whole sequence only at its last position, so that is the summary; an encoder's
    /// position 0 sees everything and is trained ([CLS]) to summarise. The last real token is found as the largest
    /// position with mask 1, which works for left and right padding alike.
    /// </remarks>
    private static Tensor Last(Tensor hidden, Tensor? attentionMask)
    {
        long b = hidden.shape[0], t = hidden.shape[1], h = hidden.shape[2];
        if (attentionMask is null) return hidden.select(1, t - 1);                           // (B, H)
        using var length = t.ToScalar();
        var positions = arange(length, ScalarType.Int64, hidden.device).unsqueeze(0);       // (1, T)
        var last = (positions * attentionMask.to(ScalarType.Int64)).argmax(1);              // (B)
        var index = last.view(b, 1, 1).expand(b, 1, h);                                      // (B, 1, H)
        return hidden.gather(1, index).squeeze(1);                                           // (B, H)
    }
}
