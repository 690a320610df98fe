using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>GPT-style decoder: pre-LN, causal attention, no segments, tied input/output embeddings.</summary>
public sealed record GptConfig : ModelConfig
{
    /// <summary>GPT-2 small defaults: V 50257, H 768, L 12, A 12, I 3072, 1024 positions, LayerNorm eps 1e-5.</summary>
    public GptConfig()
    {
        VocabSize = 50257;
        MaxPositions = 1024;
        TypeVocabSize = 0;
        LayerNormEps = 1e-5;
        Norm = NormPlacement.Pre;
    }

    /// <inheritdoc />
    public override bool IsCausal => true;
}

/// <summary>How <see cref="GptLanguageModel.Generate"/> picks tokens: greedy, or sampling with temperature and optional top-k.</summary>
public sealed record GenerationOptions
{
    /// <summary>Upper bound on appended tokens (the output may be shorter if every row emitted EOS).</summary>
    public int MaxNewTokens { get; init; } = 32;
    /// <summary>Argmax at every step; Temperature, TopK and the generator are then unused.</summary>
    public bool Greedy { get; init; }
    public double Temperature { get; init; } = 1.0;
    /// <summary>Sample only among the k most likely tokens; 0 means the whole vocabulary.</summary>
    public int TopK { get; init; }
    /// <summary>A row stops after emitting this id and is filled with PadTokenId; null never stops early.</summary>
    public long? EosTokenId { get; init; }

    /// <summary>Throws ArgumentException for a negative bound, non-positive temperature or negative k.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"{nameof(MaxNewTokens)} must be >= 0, got {MaxNewTokens}.", nameof(MaxNewTokens));
        if (!(Temperature > 0)) throw new ArgumentException($"{nameof(Temperature)} must be > 0, got {Temperature}.", nameof(Temperature));
        if (TopK < 0) throw new ArgumentException($"{nameof(TopK)} must be >= 0, got {TopK}.", nameof(TopK));
    }
}

/// <summary>Decoder-only language model: the shared core with causal attention and logits = hidden · Eᵀ (tied token table).</summary>
public sealed class GptLanguageModel : nn.Module<Tensor, Tensor?, Tensor>, IHasBackbone
{
    private readonly Transformer decoder;

    public GptLanguageModel(GptConfig config) : base(nameof(GptLanguageModel))
    {
        if (config.EmbeddingWidth != config.HiddenSize)
            throw new ArgumentException("a tied GPT output needs EmbeddingSize equal to HiddenSize (or 0).", nameof(config));
        decoder = new Transformer(config);
        RegisterComponents();
    }

    /// <inheritdoc />
    public Transformer Backbone => decoder;

    /// <summary>ids (B, T), attentionMask (B, T)? (right padding) → next-token logits (B, T, V).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask)
    {
        var hidden = decoder.forward(ids, attentionMask, null);                          // (B, T, H)
        return nn.functional.linear(hidden, decoder.Embeddings.Token.weight!);          // (B, T, V)
    }

    /// <summary>Next-word prediction over ids (B, T); pads (attentionMask 0) are never targets.</summary>
    public LossTerms Loss(Tensor ids, Tensor? attentionMask)
    {
        var labels = attentionMask is null ? ids : ids.masked_fill(attentionMask.eq(Scalars.Zero), Scalars.IgnoreIndex); // (B, T)
        return LanguageModelLosses.CausalLm(forward(ids, attentionMask), labels);
    }

    /// <summary>
    /// Appends up to MaxNewTokens to prompt (B, T0) (equal-length rows, no padding) → (B, T0 + n). Runs in eval mode
    /// without gradient and restores the previous mode. Sampling draws from rng (create it on the model's device);
    /// the same seed, prompt and weights give the same tokens.
    /// </summary>
    /// <remarks>
    /// No KV cache: every step re-runs the (cropped) context, which is fine for evaluation-sized generation and keeps
    /// one code path. Contexts longer than MaxPositions keep their last MaxPositions tokens.
    /// </remarks>
    public Tensor Generate(Tensor prompt, GenerationOptions options, Generator? rng = null)
    {
        options.Validate();
        bool wasTraining = training;
        eval();
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var config = decoder.Config;
            var ids = prompt.clone();                                                    // (B, T) owned by this scope
            var finished = zeros(prompt.shape[0], ScalarType.Bool, prompt.device);       // (B)
            using var pad = config.PadTokenId.ToScalar();
            for (int step = 0; step < options.MaxNewTokens; step++)
            {
                long t = ids.shape[1];
                var context = t > config.MaxPositions ? ids.narrow(1, t - config.MaxPositions, config.MaxPositions) : ids;
                var logits = forward(context, null).select(1, context.shape[1] - 1);    // (B, V)
                var next = NextToken(logits, options, rng);                              // (B)
                next = where(finished, full_like(next, pad), next);        // (B)
                ids = cat([ids, next.unsqueeze(1)], 1);                                  // (B, T+1)
                if (options.EosTokenId is long eos)
                {
                    using var eosScalar = eos.ToScalar();
                    finished = finished.logical_or(next.eq(eosScalar));
                    if (finished.all().item<bool>()) break;
                }
            }
            return ids.MoveToOuterDisposeScope();
        }
        finally
        {
            train(wasTraining);
        }
    }

    private static Tensor NextToken(Tensor logits, GenerationOptions options, Generator? rng)
    {
        if (options.Greedy) return logits.argmax(-1);                                    // (B)
        using var temperature = options.Temperature.ToScalar();
        var scaled = logits / temperature;                                               // (B, V)
        if (options.TopK > 0 && options.TopK < scaled.shape[^1])
        {
            var (values, _) = scaled.topk(options.TopK, -1);                             // (B, k)
            var threshold = values.narrow(-1, options.TopK - 1, 1);                      // (B, 1)
            scaled = scaled.masked_fill(scaled.lt(threshold), Scalars.NegativeInfinity);  // (B, V)
        }
        return scaled.softmax(-1).multinomial(1, generator: rng).squeeze(-1);            // (B)
    }
}
