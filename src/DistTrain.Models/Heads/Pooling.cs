using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>Chooses the one hidden state a sequence-level head reads: [CLS] for encoders, the last real token for decoders.</summary>
public static class Pooling
{
    /// <summary>hidden (B, T, H), attentionMask (B, T) or null → (B, H).</summary>
    /// <remarks>
    /// A causal model has seen the whole sequence only at its last position, so that is the summary; an encoder's
    /// position 0 sees everything and is trained ([CLS]) to summarise. The last real token is found as the largest
    /// position with mask 1, which works for left and right padding alike.
    /// </remarks>
    public static Tensor Select(Tensor hidden, Tensor? attentionMask, bool causal)
    {
        long b = hidden.shape[0], t = hidden.shape[1], h = hidden.shape[2];
        if (!causal) return hidden.select(1, 0);                                             // (B, H)
        if (attentionMask is null) return hidden.select(1, t - 1);                           // (B, H)
        var positions = arange(t, ScalarType.Int64, hidden.device).unsqueeze(0);            // (1, T)
        var last = (positions * attentionMask.to(ScalarType.Int64)).argmax(1);              // (B)
        var index = last.view(b, 1, 1).expand(b, 1, h);                                      // (B, 1, H)
        return hidden.gather(1, index).squeeze(1);                                           // (B, H)
    }
}
