using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>
/// Transformer-XL relative attention, as XLNet uses it: the score of query i for key j is
/// (qᵢ + u)·kⱼ + (qᵢ + v)·W_r·R(i − j), where R is a sinusoid of the distance i − j, so no absolute position enters
/// and the same weights apply at any length. The query input and the keys/values may differ (XLNet's query stream
/// reads the content stream's keys).
/// </summary>
public sealed class RelativeAttention : nn.Module<Tensor, Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear q, k, v, r, o;
    private readonly Parameter content_bias;     // u: (nh, hd)
    private readonly Parameter position_bias;    // v: (nh, hd)
    private readonly int heads;
    private readonly double attentionDropout;

    public RelativeAttention(int hidden, int heads, double attentionDropout, double initStd) : base(nameof(RelativeAttention))
    {
        if (hidden % heads != 0) throw new ArgumentException($"hidden ({hidden}) must be divisible by heads ({heads}).", nameof(heads));
        this.heads = heads;
        this.attentionDropout = attentionDropout;
        // XLNet's projections have no biases; u and v play that role for the two score terms.
        q = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), initStd);
        k = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), initStd);
        v = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), initStd);
        r = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), initStd);
        o = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), initStd);
        content_bias = new Parameter(normal(0, initStd, [heads, hidden / heads]));
        position_bias = new Parameter(normal(0, initStd, [heads, hidden / heads]));
        RegisterComponents();
    }

    /// <summary>
    /// query (B, T, H), content (B, T, H), relative (2T−1, H) from <see cref="Sinusoid"/>, additive mask (B|1, 1, T, T)?
    /// → (B, T, H).
    /// </summary>
    public override Tensor forward(Tensor query, Tensor content, Tensor relative, Tensor? mask)
    {
        long b = query.shape[0], t = query.shape[1], h = query.shape[2], hd = h / heads;
        if (relative.shape[0] != 2 * t - 1) throw new ArgumentException($"relative encodings must be (2T-1, H) = ({2 * t - 1}, {h}), got ({string.Join(", ", relative.shape)}).", nameof(relative));
        var qh = q.forward(query).view(b, t, heads, hd).transpose(1, 2);            // (B, nh, T, hd)
        var kh = k.forward(content).view(b, t, heads, hd).transpose(1, 2);          // (B, nh, T, hd)
        var vh = v.forward(content).view(b, t, heads, hd).transpose(1, 2);          // (B, nh, T, hd)
        var rh = r.forward(relative).view(2 * t - 1, heads, hd).permute(1, 2, 0);   // (nh, hd, 2T-1)
        var byContent = qh.add(content_bias.view(1, heads, 1, hd), Scalars.One).matmul(kh.transpose(2, 3));   // (B, nh, T, T)
        var byDistance = qh.add(position_bias.view(1, heads, 1, hd), Scalars.One).matmul(rh.unsqueeze(0));    // (B, nh, T, 2T-1)
        // Column (i − j + T − 1) of row i holds distance i − j; gather picks it for every key j.
        var index = DistanceIndex(t, query.device).expand(b, heads, t, t);          // (B, nh, T, T)
        using var scale = Math.Sqrt(hd).ToScalar();
        var scores = byContent.add(byDistance.gather(3, index), Scalars.One) / scale;             // (B, nh, T, T)
        // Masked keys get exactly zero weight, also in a row with nothing visible (the first token of an order in the
        // query stream), which would otherwise spread uniformly over every key, its own content included.
        var weights = mask is null ? scores.softmax(-1)
            : scores.add(mask, Scalars.One).softmax(-1) * mask.eq(Scalars.Zero).to(scores.dtype);           // (B, nh, T, T)
        weights = nn.functional.dropout(weights, attentionDropout, training);      // (B, nh, T, T)
        var y = weights.matmul(vh).transpose(1, 2).reshape(b, t, h);               // (B, T, H)
        return o.forward(y);                                                        // (B, T, H)
    }

    /// <summary>(T, T) int64 with entry [i, j] = i − j + T − 1: the row of distance i − j in <see cref="Sinusoid"/>.</summary>
    public static Tensor DistanceIndex(long t, Device device)
    {
        using var length = t.ToScalar();
        using var offset = (t - 1).ToScalar();
        var positions = arange(length, ScalarType.Int64, device);                    // (T)
        return (positions.unsqueeze(1) - positions.unsqueeze(0)).add(offset, Scalars.One).view(1, 1, t, t); // (1, 1, T, T)
    }

    /// <summary>
    /// Sinusoidal encodings of the distances −(T−1) … T−1 (row d + T − 1 is distance d): (2T−1, width), sin in the first
    /// half, cos in the second, frequencies 1/10000^(2i/width) as in Transformer-XL.
    /// </summary>
    public static Tensor Sinusoid(long t, long width, ScalarType dtype, Device device)
    {
        if (width % 2 != 0) throw new ArgumentException($"width must be even, got {width}.", nameof(width));
        using var first = (-(t - 1)).ToScalar();
        using var end = t.ToScalar();
        using var step = 2.ToScalar();
        using var w = width.ToScalar();
        using var @base = tensor(10000.0);
        var distances = arange(first, end, ScalarType.Float64, device);                                     // (2T-1)
        var frequencies = pow(@base, -arange(Scalars.Zero, w, step, ScalarType.Float64, device) / w);               // (W/2)
        var angles = distances.unsqueeze(1) * frequencies.unsqueeze(0);                                     // (2T-1, W/2)
        return cat([angles.sin(), angles.cos()], 1).to(dtype);                                              // (2T-1, W)
    }
}
