using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>T5: encoder–decoder, pre-RMSNorm blocks, ReLU MLP without biases, bucketed relative position bias, one shared token table.</summary>
/// <remarks>
/// <see cref="ModelConfig.Layers"/> is the depth of the encoder and of the decoder each. There is no position table
/// (<see cref="ModelConfig.MaxPositions"/> builds nothing). Initialisation is T5's own, not <see cref="ModelConfig.InitStd"/>:
/// token table N(0, 1) (the head scales hidden states by H^−½), queries N(0, (H·d_head)^−½) in place of a 1/√d_head score
/// scale, other matrices N(0, fan_in^−½), position biases N(0, H^−½).
/// </remarks>
public sealed record T5Config : ModelConfig
{
    /// <summary>Distance buckets of the position bias (32 in T5).</summary>
    public int RelativeBuckets { get; init; } = 32;
    /// <summary>Distances at or beyond this share the last bucket (128 in T5).</summary>
    public int RelativeMaxDistance { get; init; } = 128;
    /// <summary>The first decoder input; T5 uses the pad id.</summary>
    public int DecoderStartTokenId { get; init; }

    /// <summary>T5-base sizes: V 32128, H 768, L 12 + 12, A 12, I 3072, dropout 0.1, RMSNorm eps 1e-6.</summary>
    public T5Config()
    {
        VocabSize = 32128;
        TypeVocabSize = 0;
        LayerNormEps = 1e-6;
        Norm = NormPlacement.Pre;
    }

    public override void Validate()
    {
        base.Validate();
        Positive(RelativeBuckets, nameof(RelativeBuckets));
        if (RelativeBuckets < 4) throw new ArgumentException($"{nameof(RelativeBuckets)} must be >= 4, got {RelativeBuckets}.", nameof(RelativeBuckets));
        if (RelativeMaxDistance < RelativeBuckets / 2)
            throw new ArgumentException($"{nameof(RelativeMaxDistance)} ({RelativeMaxDistance}) must be at least {nameof(RelativeBuckets)}/2.", nameof(RelativeMaxDistance));
        if (EmbeddingSize != 0 && EmbeddingSize != HiddenSize) throw new ArgumentException($"T5 does not factorise embeddings; {nameof(EmbeddingSize)} must be 0.", nameof(EmbeddingSize));
        if (DecoderStartTokenId < 0 || DecoderStartTokenId >= VocabSize)
            throw new ArgumentException($"{nameof(DecoderStartTokenId)} ({DecoderStartTokenId}) must be a token id below {nameof(VocabSize)}.", nameof(DecoderStartTokenId));
    }
}

/// <summary>T5's LayerNorm: scale only, no mean subtraction and no bias (RMSNorm).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    public RmsNorm(int hidden, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(hidden));
        this.eps = eps;
        RegisterComponents();
    }

    /// <summary>x (…, H) → (…, H).</summary>
    public override Tensor forward(Tensor x)
    {
        using var epsilon = eps.ToScalar();
        return x * x.pow(Scalars.Two).mean([-1], keepdim: true).add(epsilon, Scalars.One).rsqrt() * weight;
    }
}

/// <summary>Multi-head attention without biases; queries from x, keys and values from kv; an additive bias carries masks and positions.</summary>
public sealed class T5Attention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear q, k, v, o;
    private readonly int heads;
    private readonly double attentionDropout;

    public T5Attention(int hidden, int heads, double attentionDropout) : base(nameof(T5Attention))
    {
        if (hidden % heads != 0) throw new ArgumentException($"hidden ({hidden}) must be divisible by heads ({heads}).", nameof(heads));
        (this.heads, this.attentionDropout) = (heads, attentionDropout);
        // T5 does not divide scores by √d_head; the smaller query initialisation does that job.
        q = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), Math.Pow((double)hidden * (hidden / heads), -0.5));
        k = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), Math.Pow(hidden, -0.5));
        v = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), Math.Pow(hidden, -0.5));
        o = Init.Linear(nn.Linear(hidden, hidden, hasBias: false), Math.Pow(hidden, -0.5));
        RegisterComponents();
    }

    /// <summary>x (B, Tq, H), kv (B, Tk, H), bias (B|1, nh|1, Tq, Tk)? additive → (B, Tq, H).</summary>
    public override Tensor forward(Tensor x, Tensor kv, Tensor? bias)
    {
        long b = x.shape[0], tq = x.shape[1], tk = kv.shape[1], h = x.shape[2], hd = h / heads;
        var qh = q.forward(x).view(b, tq, heads, hd).transpose(1, 2);                 // (B, nh, Tq, hd)
        var kh = k.forward(kv).view(b, tk, heads, hd).transpose(1, 2);                // (B, nh, Tk, hd)
        var vh = v.forward(kv).view(b, tk, heads, hd).transpose(1, 2);                // (B, nh, Tk, hd)
        var scores = qh.matmul(kh.transpose(2, 3));                                   // (B, nh, Tq, Tk)
        if (bias is not null) scores = scores.add(bias, Scalars.One);                                 // (B, nh, Tq, Tk)
        var weights = nn.functional.dropout(scores.softmax(-1), attentionDropout, training); // (B, nh, Tq, Tk)
        return o.forward(weights.matmul(vh).transpose(1, 2).reshape(b, tq, h));        // (B, Tq, H)
    }
}

/// <summary>One T5 block: self-attention, cross-attention (decoder only), ReLU MLP; each sublayer pre-normed with a residual.</summary>
public sealed class T5Block : nn.Module<Tensor, Tensor?, Tensor?, Tensor?, Tensor>
{
    private readonly RmsNorm self_norm;
    private readonly T5Attention self_attention;
    private readonly RmsNorm? cross_norm;
    private readonly T5Attention? cross_attention;
    private readonly RmsNorm mlp_norm;
    private readonly Linear wi, wo;
    private readonly Dropout dropout;

    public T5Block(T5Config c, bool decoder) : base(nameof(T5Block))
    {
        self_norm = new RmsNorm(c.HiddenSize, c.LayerNormEps);
        self_attention = new T5Attention(c.HiddenSize, c.Heads, c.AttentionDropout);
        if (decoder)
        {
            cross_norm = new RmsNorm(c.HiddenSize, c.LayerNormEps);
            cross_attention = new T5Attention(c.HiddenSize, c.Heads, c.AttentionDropout);
        }
        mlp_norm = new RmsNorm(c.HiddenSize, c.LayerNormEps);
        wi = Init.Linear(nn.Linear(c.HiddenSize, c.IntermediateSize, hasBias: false), Math.Pow(c.HiddenSize, -0.5));
        wo = Init.Linear(nn.Linear(c.IntermediateSize, c.HiddenSize, hasBias: false), Math.Pow(c.IntermediateSize, -0.5));
        dropout = nn.Dropout(c.Dropout);
        RegisterComponents();
    }

    /// <summary>x (B, T, H), selfBias (B|1, nh, T, T)?, encoder states (B, S, H)? and crossMask (B|1, 1, T, S)? → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor? selfBias, Tensor? encoder, Tensor? crossMask)
    {
        var normed = self_norm.forward(x);
        x = x.add(dropout.forward(self_attention.forward(normed, normed, selfBias)), Scalars.One);                              // (B, T, H)
        if (cross_attention is not null)
        {
            if (encoder is null) throw new ArgumentException("a decoder block needs the encoder states.", nameof(encoder));
            x = x.add(dropout.forward(cross_attention.forward(cross_norm!.forward(x), encoder, crossMask)), Scalars.One);      // (B, T, H)
        }
        var mlp = wo.forward(dropout.forward(nn.functional.relu(wi.forward(mlp_norm.forward(x)))));            // (B, T, H)
        return x.add(dropout.forward(mlp), Scalars.One);                                                                         // (B, T, H)
    }
}

/// <summary>T5 encoder–decoder over one shared token table, with an LM head tied to it (hidden scaled by H^−½ as in T5 v1.0).</summary>
public sealed class T5Model : nn.Module<Tensor, Tensor?, Tensor, Tensor>
{
    private readonly Embedding shared;
    private readonly ModuleList<T5Block> encoder;
    private readonly ModuleList<T5Block> decoder;
    private readonly RelativePositionBias encoder_bias;
    private readonly RelativePositionBias decoder_bias;
    private readonly RmsNorm encoder_norm;
    private readonly RmsNorm decoder_norm;
    private readonly Dropout dropout;

    public T5Model(T5Config config) : base(nameof(T5Model))
    {
        config.Validate();
        Config = config;
        shared = Init.Embedding(nn.Embedding(config.VocabSize, config.HiddenSize), 1.0);
        encoder = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new T5Block(config, decoder: false)).ToArray());
        decoder = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new T5Block(config, decoder: true)).ToArray());
        // One bias table per stack, shared by all its layers (T5 computes it in the first layer and passes it on).
        double biasStd = Math.Pow(config.HiddenSize, -0.5);
        encoder_bias = new RelativePositionBias(config.RelativeBuckets, config.RelativeMaxDistance, config.Heads, bidirectional: true, biasStd);
        decoder_bias = new RelativePositionBias(config.RelativeBuckets, config.RelativeMaxDistance, config.Heads, bidirectional: false, biasStd);
        encoder_norm = new RmsNorm(config.HiddenSize, config.LayerNormEps);
        decoder_norm = new RmsNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public T5Config Config { get; }

    /// <summary>Encoder: ids (B, S), attentionMask (B, S)? → (B, S, H).</summary>
    public Tensor Encode(Tensor ids, Tensor? attentionMask) => EncodeEmbedded(shared.forward(ids), attentionMask);

    /// <summary>Encoder from token embeddings x (B, S, H) (mask tests differentiate with respect to them) → (B, S, H).</summary>
    public Tensor EncodeEmbedded(Tensor x, Tensor? attentionMask)
    {
        x = dropout.forward(x);                                                                      // (B, S, H)
        long s = x.shape[1];
        var bias = encoder_bias.forward(s, s, x.device).to(x.dtype);                                 // (1, nh, S, S)
        var padding = AttentionMask.Build(attentionMask, s, causal: false, x.dtype, x.device);      // (B|1, 1, S, S)?
        if (padding is not null) bias = bias.add(padding, Scalars.One);                                              // (B, nh, S, S)
        foreach (var block in encoder) x = block.forward(x, bias, null, null);                      // (B, S, H)
        return dropout.forward(encoder_norm.forward(x));                                             // (B, S, H)
    }

    /// <summary>
    /// Decoder: inputs (B, T) (right-shifted targets, right padding), encoder states (B, S, H), encoder mask (B, S)?
    /// → hidden (B, T, H). Causal self-attention hides later positions, so right padding needs no mask of its own.
    /// </summary>
    public Tensor Decode(Tensor inputs, Tensor encoded, Tensor? encoderMask) => DecodeEmbedded(shared.forward(inputs), encoded, encoderMask);

    /// <summary>Decoder from input embeddings x (B, T, H) → (B, T, H).</summary>
    public Tensor DecodeEmbedded(Tensor x, Tensor encoded, Tensor? encoderMask)
    {
        x = dropout.forward(x);                                                                      // (B, T, H)
        long t = x.shape[1], s = encoded.shape[1];
        var bias = decoder_bias.forward(t, t, x.device).to(x.dtype)
                   .add(AttentionMask.Build(null, t, causal: true, x.dtype, x.device)!, Scalars.One); // (1, nh, T, T)
        using var lowest = finfo(x.dtype).min.ToScalar();
        Tensor? cross = encoderMask is null ? null
            : zeros([encoderMask.shape[0], 1, 1, s], x.dtype, x.device)
                .masked_fill(encoderMask.eq(Scalars.Zero).view(encoderMask.shape[0], 1, 1, s), lowest); // (B, 1, 1, S)
        foreach (var block in decoder) x = block.forward(x, bias, encoded, cross);                  // (B, T, H)
        return dropout.forward(decoder_norm.forward(x));                                             // (B, T, H)
    }

    /// <summary>Decoder hidden (B, T, H) → logits (B, T, V) through the tied table.</summary>
    public Tensor Logits(Tensor hidden)
    {
        using var scale = Math.Pow(Config.HiddenSize, -0.5).ToScalar();
        return nn.functional.linear(hidden * scale, shared.weight!);                 // (B, T, V)
    }

    /// <summary>ids (B, S), attentionMask (B, S)?, decoder inputs (B, T) → logits (B, T, V).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor decoderInputs)
        => Logits(Decode(decoderInputs, Encode(ids, attentionMask), attentionMask));

    /// <summary>Teacher-forced cross-entropy on labels (B, T) (−100 ignored; decoderInputs is labels shifted right). Count = targets.</summary>
    public LossTerms Loss(Tensor ids, Tensor? attentionMask, Tensor decoderInputs, Tensor labels)
        => LanguageModelLosses.MaskedLm(forward(ids, attentionMask, decoderInputs), labels);
}

/// <summary>
/// Text-to-text classification: the label of class c is a word (token ids ending in EOS); the class scores are the decoder
/// log-likelihoods of the C label words, so their softmax is a class distribution for labelling and distillation.
/// Training is plain teacher-forced generation of the gold word (<see cref="Loss"/>).
/// </summary>
public sealed class T5TextClassifier : nn.Module<Tensor, Tensor?, Tensor>, IClassifier
{
    private readonly T5Model model;
    private readonly long[] targets;          // (C, L) flattened, right-padded with −100
    private readonly long[] decoderInputs;    // (C, L) flattened: start id, then the target shifted right
    private readonly int length;

    /// <param name="labelWords">per class, the token ids of its label word (EOS included); the model knows no vocabulary.</param>
    public T5TextClassifier(T5Model model, IReadOnlyList<int[]> labelWords) : base(nameof(T5TextClassifier))
    {
        if (labelWords.Count == 0 || labelWords.Any(w => w.Length == 0)) throw new ArgumentException("every class needs a non-empty label word.", nameof(labelWords));
        if (labelWords.Select(w => string.Join(",", w)).Distinct().Count() != labelWords.Count) throw new ArgumentException("label words must differ.", nameof(labelWords));
        this.model = model;
        Classes = labelWords.Count;
        length = labelWords.Max(w => w.Length);
        targets = new long[Classes * length];
        decoderInputs = new long[Classes * length];
        Array.Fill(targets, LanguageModelLosses.IgnoreIndex);
        Array.Fill(decoderInputs, model.Config.PadTokenId);
        for (int c = 0; c < Classes; c++)
        {
            decoderInputs[c * length] = model.Config.DecoderStartTokenId;
            for (int i = 0; i < labelWords[c].Length; i++)
            {
                targets[c * length + i] = labelWords[c][i];
                if (i + 1 < length) decoderInputs[c * length + i + 1] = labelWords[c][i];
            }
        }
        RegisterComponents();
    }

    /// <summary>The encoder–decoder; its state dict is what pre-training hands over.</summary>
    public T5Model Model => model;

    /// <inheritdoc />
    public int Classes { get; }

    /// <summary>ids (B, S), attentionMask (B, S)? → Σ log p(label word c) (B, C).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask)
    {
        long b = ids.shape[0], c = Classes;
        var encoded = model.Encode(ids, attentionMask);                                         // (B, S, H)
        var wide = encoded.repeat_interleave(c, 0);                                             // (B*C, S, H)
        var wideMask = attentionMask?.repeat_interleave(c, 0);                                  // (B*C, S)?
        var (inputs, labels) = Words(ids.device);                                               // (C, L) each
        var logp = model.Logits(model.Decode(inputs.repeat(b, 1), wide, wideMask)).log_softmax(-1); // (B*C, L, V)
        var gold = labels.repeat(b, 1);                                                         // (B*C, L)
        var real = gold.ne(Scalars.IgnoreIndex);                                    // (B*C, L)
        var tokenLogp = logp.gather(2, gold.clamp_min(Scalars.Zero).unsqueeze(2)).squeeze(2);              // (B*C, L)
        return (tokenLogp * real.to(tokenLogp.dtype)).sum(1).view(b, c);                        // (B, C)
    }

    /// <inheritdoc />
    public Tensor Classify(Tensor ids, Tensor? attentionMask) => forward(ids, attentionMask);

    /// <summary>Generation loss of the gold label words: labels (B) → cross-entropy summed over their tokens, Count = tokens.</summary>
    public LossTerms Loss(Tensor ids, Tensor? attentionMask, Tensor labels)
    {
        var (inputs, words) = Words(ids.device);                                                // (C, L) each
        return model.Loss(ids, attentionMask, inputs.index_select(0, labels), words.index_select(0, labels));
    }

    private (Tensor Inputs, Tensor Targets) Words(Device device) =>
        (tensor(decoderInputs, [Classes, length], ScalarType.Int64, device), tensor(targets, [Classes, length], ScalarType.Int64, device));
}
