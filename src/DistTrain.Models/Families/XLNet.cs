using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>XLNet: post-LN encoder with relative (sinusoidal, Transformer-XL) attention and no position table; pre-trained by permutation LM.</summary>
/// <remarks>
/// <see cref="ModelConfig.MaxPositions"/> builds nothing here (there is no position table): the model runs at any length.
/// One segment only: XLNet's segment-relative encoding and Transformer-XL memory are not implemented.
/// </remarks>
public sealed record XLNetConfig : ModelConfig
{
    /// <summary>XLNet-base sizes: V 32000, H 768, L 12, A 12, I 3072, no segment table, LayerNorm eps 1e-12.</summary>
    public XLNetConfig()
    {
        VocabSize = 32000;
        TypeVocabSize = 0;
    }

    /// <summary>XLNet summarises a sequence at its last token (its &lt;cls&gt; sits at the end).</summary>
    public override bool PoolsLastToken => true;

    public override void Validate()
    {
        base.Validate();
        if (HiddenSize % 2 != 0) throw new ArgumentException($"{nameof(HiddenSize)} must be even for sinusoidal relative encodings, got {HiddenSize}.", nameof(HiddenSize));
        if (EmbeddingSize != 0 && EmbeddingSize != HiddenSize) throw new ArgumentException($"XLNet does not factorise embeddings; {nameof(EmbeddingSize)} must be 0.", nameof(EmbeddingSize));
        if (TypeVocabSize != 0) throw new ArgumentException($"XLNet has no segment table here; {nameof(TypeVocabSize)} must be 0.", nameof(TypeVocabSize));
    }
}

/// <summary>One XLNet layer: relative attention + GELU MLP, post-LN; the same weights serve the content and the query stream.</summary>
public sealed class XLNetLayer : nn.Module<Tensor, Tensor, Tensor, Tensor?, Tensor>
{
    private readonly RelativeAttention attention;
    private readonly LayerNorm attention_norm;
    private readonly Linear fc_in;
    private readonly Linear fc_out;
    private readonly LayerNorm mlp_norm;
    private readonly Dropout dropout;

    public XLNetLayer(XLNetConfig config) : base(nameof(XLNetLayer))
    {
        attention = new RelativeAttention(config.HiddenSize, config.Heads, config.AttentionDropout, config.InitStd);
        attention_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        fc_in = Init.Linear(nn.Linear(config.HiddenSize, config.IntermediateSize), config.InitStd);
        fc_out = Init.Linear(nn.Linear(config.IntermediateSize, config.HiddenSize), config.InitStd);
        mlp_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>stream (B, T, H) queries the content (B, T, H) under mask (B|1, 1, T, T)?; relative (2T−1, H) → (B, T, H).</summary>
    public override Tensor forward(Tensor stream, Tensor content, Tensor relative, Tensor? mask)
    {
        var x = attention_norm.forward(stream.add(dropout.forward(attention.forward(stream, content, relative, mask)), Scalars.One)); // (B, T, H)
        var mlp = fc_out.forward(nn.functional.gelu(fc_in.forward(x)));                                             // (B, T, H)
        return mlp_norm.forward(x.add(dropout.forward(mlp), Scalars.One));                                                          // (B, T, H)
    }
}

/// <summary>
/// The XLNet stack. <c>forward</c> is the content stream with full bidirectional attention (fine-tuning, labelling);
/// <see cref="TwoStream"/> runs both streams under a factorisation order (pre-training).
/// </summary>
public sealed class XLNetEncoder : Backbone
{
    private readonly Embedding token;
    private readonly Parameter query_start;      // w: every query stream starts from this vector, never from its token
    private readonly Dropout dropout;
    private readonly ModuleList<XLNetLayer> layers;

    public XLNetEncoder(XLNetConfig config) : base(nameof(XLNetEncoder))
    {
        config.Validate();
        Config = config;
        token = Init.Embedding(nn.Embedding(config.VocabSize, config.HiddenSize), config.InitStd);
        query_start = new Parameter(normal(0, config.InitStd, [1, 1, config.HiddenSize]));
        dropout = nn.Dropout(config.Dropout);
        layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new XLNetLayer(config)).ToArray());
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelConfig Config { get; }

    /// <summary>The token table; the LM head ties its decoder to it.</summary>
    public Embedding Token => token;

    /// <summary>ids (B, T) → token embeddings (B, T, H), with dropout. No positions: they enter only through attention.</summary>
    public Tensor Embed(Tensor ids) => dropout.forward(token.forward(ids));

    /// <summary>Content stream, bidirectional: ids (B, T), attentionMask (B, T)? → (B, T, H). Segments are not supported.</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
    {
        if (segments is not null) throw new ArgumentException("XLNet here has no segment encoding, but segments were given.", nameof(segments));
        var h = Embed(ids);                                                                       // (B, T, H)
        var mask = AttentionMask.Build(attentionMask, ids.shape[1], causal: false, h.dtype, h.device); // (B|1, 1, T, T)?
        var relative = RelativeAttention.Sinusoid(ids.shape[1], h.shape[2], h.dtype, h.device);   // (2T-1, H)
        foreach (var layer in layers) h = layer.forward(h, h, relative, mask);                    // (B, T, H)
        return h;
    }

    /// <summary>
    /// Both streams over embedded content x (B, T, H) under the factorisation order given by ranks (B, T) (rank of each
    /// position in the order); attentionMask (B, T)? hides padding. Returns (content h, query g), each (B, T, H).
    /// The content stream at i sees positions ranked at or before i; the query stream at i sees positions ranked strictly
    /// before i, and its own position only through the relative encoding.
    /// </summary>
    public (Tensor Content, Tensor Query) TwoStream(Tensor x, Tensor ranks, Tensor? attentionMask)
    {
        long b = x.shape[0], t = x.shape[1], hidden = x.shape[2];
        var (contentMask, queryMask) = PermutationMasks.Build(ranks, attentionMask, x.dtype);     // (B, 1, T, T) each
        var relative = RelativeAttention.Sinusoid(t, hidden, x.dtype, x.device);                  // (2T-1, H)
        var h = x;                                                                                 // (B, T, H)
        var g = dropout.forward(query_start.expand(b, t, hidden));                                 // (B, T, H)
        foreach (var layer in layers)
        {
            // Both read the previous layer's content stream.
            var nextG = layer.forward(g, h, relative, queryMask);                                  // (B, T, H)
            h = layer.forward(h, h, relative, contentMask);                                        // (B, T, H)
            g = nextG;
        }
        return (h, g);
    }
}

/// <summary>The additive attention masks of permutation language modelling.</summary>
public static class PermutationMasks
{
    /// <summary>
    /// ranks (B, T): position i is the ranks[i]-th token of the factorisation order; attentionMask (B, T)? with 0 at padding.
    /// → content mask (key j visible to query i iff rank j ≤ rank i) and query mask (iff rank j &lt; rank i), both (B, 1, T, T)
    /// additive, padding never visible. A row with nothing visible (the first token of the order, in the query stream) is
    /// uniform rather than NaN (see <see cref="AttentionMask.Build"/>); it is never a prediction target.
    /// </summary>
    public static (Tensor Content, Tensor Query) Build(Tensor ranks, Tensor? attentionMask, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long b = ranks.shape[0], t = ranks.shape[1];
        var query = ranks.view(b, 1, t, 1);                                                        // (B, 1, T, 1)
        var key = ranks.view(b, 1, 1, t);                                                          // (B, 1, 1, T)
        var content = key.le(query);                                                               // (B, 1, T, T)
        var stream = key.lt(query);                                                                // (B, 1, T, T)
        if (attentionMask is not null)
        {
            var real = attentionMask.to(ScalarType.Bool).view(b, 1, 1, t);                         // (B, 1, 1, T)
            content = content.logical_and(real);
            stream = stream.logical_and(real);
        }
        using var lowest = finfo(dtype).min.ToScalar();
        Tensor Additive(Tensor allowed) => zeros(allowed.shape, dtype, ranks.device).masked_fill(allowed.logical_not(), lowest);
        return (Additive(content).MoveToOuterDisposeScope(), Additive(stream).MoveToOuterDisposeScope());
    }
}

/// <summary>
/// XLNet pre-training: the two-stream encoder and a token head tied to the embedding table (plus a bias) on the query
/// stream. Loss: cross-entropy at the target positions (the last 1/K of each order, chosen by the caller).
/// </summary>
public sealed class XLNetLanguageModel : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly XLNetEncoder encoder;
    private readonly Parameter output_bias;

    public XLNetLanguageModel(XLNetConfig config) : base(nameof(XLNetLanguageModel))
    {
        encoder = new XLNetEncoder(config);
        output_bias = new Parameter(zeros(config.VocabSize));
        RegisterComponents();
    }

    /// <summary>The stack fine-tuning keeps.</summary>
    public XLNetEncoder Backbone => encoder;

    /// <summary>ids (B, T), ranks (B, T), attentionMask (B, T)? → query-stream logits (B, T, V).</summary>
    public override Tensor forward(Tensor ids, Tensor ranks, Tensor? attentionMask)
    {
        var (_, g) = encoder.TwoStream(encoder.Embed(ids), ranks, attentionMask);                 // (B, T, H)
        return nn.functional.linear(g, encoder.Token.weight!, output_bias);                        // (B, T, V)
    }

    /// <summary>Permutation LM: labels (B, T) hold the token at target positions and −100 elsewhere. Count = targets.</summary>
    public LossTerms Loss(Tensor ids, Tensor ranks, Tensor? attentionMask, Tensor labels)
        => LanguageModelLosses.MaskedLm(forward(ids, ranks, attentionMask), labels);
}
