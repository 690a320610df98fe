using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>The one transformer core every family uses: embeddings (optionally factorized), L blocks (optionally one shared block), final LN for pre-LN.</summary>
/// <remarks>It is the backbone that heads and pre-training objectives sit on; fine-tuning loads its state dict.</remarks>
public sealed class Transformer : Backbone
{
    private readonly Embeddings embeddings;
    private readonly Linear? projection;
    private readonly ModuleList<TransformerBlock> layers;
    private readonly LayerNorm? final_norm;
    private readonly int depth;

    /// <param name="config">validated here</param>
    /// <param name="sharedEmbeddings">tables owned by another model (ELECTRA); must have width config.EmbeddingWidth</param>
    public Transformer(ModelConfig config, Embeddings? sharedEmbeddings = null) : base(nameof(Transformer))
    {
        config.Validate();
        Config = config;
        depth = config.Layers;
        embeddings = sharedEmbeddings ?? new Embeddings(config);
        if (embeddings.Width != config.EmbeddingWidth)
            throw new ArgumentException($"shared embeddings have width {embeddings.Width}, config expects {config.EmbeddingWidth}.", nameof(sharedEmbeddings));
        if (config.EmbeddingWidth != config.HiddenSize)
            projection = Init.Linear(nn.Linear(config.EmbeddingWidth, config.HiddenSize), config.InitStd);
        // ALBERT: one block object, run L times, so the weights are one storage and the count does not grow with depth.
        int distinct = config.ShareLayers ? 1 : config.Layers;
        layers = nn.ModuleList(Enumerable.Range(0, distinct).Select(_ => new TransformerBlock(config)).ToArray());
        // Pre-LN leaves the residual stream un-normalised; GPT-2 adds one LayerNorm at the top.
        if (config.Norm == NormPlacement.Pre) final_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelConfig Config { get; }

    /// <summary>
    /// When set, each block's output is recorded as a backward cut (<see cref="BackwardCuts"/>) so training can send
    /// a block's gradients while earlier blocks are still in backward. Only for unshared layers; null by default.
    /// </summary>
    public BackwardCuts? Cuts
    {
        get => _cuts;
        set => _cuts = value is null || !Config.ShareLayers ? value
            : throw new InvalidOperationException("a transformer with shared layers cannot be cut: its block's gradients are final only after the first layer's backward");
    }

    private BackwardCuts? _cuts;

    /// <summary>The distinct blocks in order of depth (one when layers are shared).</summary>
    public IReadOnlyList<TransformerBlock> Blocks => layers.ToArray();

    /// <summary>The embedding tables (token, position, segment).</summary>
    public Embeddings Embeddings => embeddings;

    /// <summary>The block run at depth i (the same object for every i when layers are shared).</summary>
    public TransformerBlock Layer(int i) => layers[Config.ShareLayers ? 0 : i];

    /// <summary>Factorized embedding lookup: ids (B, T), segments (B, T)? → (B, T, H).</summary>
    public Tensor Embed(Tensor ids, Tensor? segments)
    {
        var x = embeddings.forward(ids, segments);                          // (B, T, E)
        return projection is null ? x : projection.forward(x);             // (B, T, H)
    }

    /// <summary>ids (B, T), attentionMask (B, T) with 1 for real tokens or null, segments (B, T) or null → hidden states (B, T, H).</summary>
    public override Tensor forward(Tensor ids, Tensor? attentionMask, Tensor? segments)
    {
        var x = Embed(ids, segments);                                        // (B, T, H)
        var mask = AttentionMask.Build(attentionMask, ids.shape[1], Config.IsCausal, x.dtype, x.device); // (B|1, 1, T, T)?
        for (int i = 0; i < depth; i++)
        {
            x = Layer(i).forward(x, mask);                                   // (B, T, H)
            if (_cuts is not null) x = _cuts.Record(Layer(i), x);
        }
        return final_norm is null ? x : final_norm.forward(x);              // (B, T, H)
    }
}
