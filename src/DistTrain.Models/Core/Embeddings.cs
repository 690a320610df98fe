using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>BERT's input representation: token + learned position (+ segment) embeddings of width E, then LayerNorm (post-LN only) and dropout.</summary>
/// <remarks>
/// The projection E→H of factorized embeddings lives in <see cref="Transformer"/>, not here, so that ELECTRA's generator
/// and discriminator can share these tables while each keeps its own projection to its own width.
/// </remarks>
public sealed class Embeddings : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Embedding token;
    private readonly Embedding position;
    private readonly Embedding? segment;
    private readonly LayerNorm? norm;
    private readonly Dropout dropout;
    private readonly long offset;

    public Embeddings(ModelConfig config) : base(nameof(Embeddings))
    {
        config.Validate();
        int e = config.EmbeddingWidth;
        token = Init.Embedding(nn.Embedding(config.VocabSize, e), config.InitStd);
        offset = config.PositionOffset;
        position = Init.Embedding(nn.Embedding(config.MaxPositions + offset, e), config.InitStd);
        if (config.TypeVocabSize > 0) segment = Init.Embedding(nn.Embedding(config.TypeVocabSize, e), config.InitStd);
        // Pre-LN stacks normalise at the start of every block already; GPT-2 has no embedding LayerNorm.
        if (config.Norm == NormPlacement.Post) norm = nn.LayerNorm(e, config.LayerNormEps);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>The token table; output heads tie their decoder to it.</summary>
    public Embedding Token => token;

    /// <summary>Width E of every table.</summary>
    public long Width => token.weight!.shape[1];

    /// <summary>ids (B, T), segments (B, T) or null (all segment 0) → (B, T, E).</summary>
    public override Tensor forward(Tensor ids, Tensor? segments)
    {
        long t = ids.shape[1];
        long maxPositions = position.weight!.shape[0] - offset;
        if (t > maxPositions) throw new ArgumentException($"sequence length {t} exceeds MaxPositions {maxPositions}.", nameof(ids));
        using var first = offset.ToScalar();
        using var end = (offset + t).ToScalar();
        var positions = arange(first, end, ScalarType.Int64, ids.device).unsqueeze(0); // (1, T): rows offset … offset+T−1
        var x = token.forward(ids).add(position.forward(positions), Scalars.One);      // (B, T, E)
        if (segment is not null)
            x = x.add(segments is null ? segment.forward(zeros_like(ids)) : segment.forward(segments), Scalars.One); // (B, T, E)
        else if (segments is not null)
            throw new ArgumentException("this model has no segment embedding (TypeVocabSize = 0) but segments were given.", nameof(segments));
        if (norm is not null) x = norm.forward(x);                                  // (B, T, E)
        return dropout.forward(x);                                                  // (B, T, E)
    }
}
