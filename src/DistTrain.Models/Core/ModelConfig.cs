namespace DistTrain.Models;

/// <summary>Where each block applies LayerNorm: after the residual add (BERT) or before each sublayer (GPT-2).</summary>
public enum NormPlacement { Post, Pre }

/// <summary>The MLP's GELU: exact erf form (BERT, PyTorch's default) or the tanh approximation GPT-2 was trained with ("gelu_new").</summary>
public enum GeluKind { Exact, Tanh }

/// <summary>Shape and regularisation of the shared transformer core; each family's record derives from it.</summary>
/// <remarks>
/// Families change defaults in their constructors, so an object initializer can still override any field.
/// Sizes are validated once here rather than deep inside a module where the error would read as a shape mismatch.
/// </remarks>
public abstract record ModelConfig
{
    public int VocabSize { get; init; } = 30522;
    public int HiddenSize { get; init; } = 768;
    public int Layers { get; init; } = 12;
    public int Heads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public int MaxPositions { get; init; } = 512;
    /// <summary>Segment (token type) vocabulary; 0 means the model has no segment embedding (GPT).</summary>
    public int TypeVocabSize { get; init; } = 2;
    /// <summary>Width of the embedding tables; 0 means HiddenSize. Any other width adds a projection E→H (ALBERT: E &lt; H; ELECTRA's small generator may have E &gt; H).</summary>
    public int EmbeddingSize { get; init; }
    public double Dropout { get; init; } = 0.1;
    public double AttentionDropout { get; init; } = 0.1;
    public double LayerNormEps { get; init; } = 1e-12;
    public int PadTokenId { get; init; }
    public NormPlacement Norm { get; init; } = NormPlacement.Post;
    /// <summary>Exact by default; a GPT-2 checkpoint imported from Hugging Face sets Tanh so it computes the function it was trained as.</summary>
    public GeluKind Gelu { get; init; } = GeluKind.Exact;
    /// <summary>
    /// Rows of the position table before position 0; position i reads row PositionOffset + i. 0 by default. A RoBERTa
    /// checkpoint imported from Hugging Face sets padding_idx + 1 = 2, keeping its two unused rows so export gives them back.
    /// </summary>
    public int PositionOffset { get; init; }
    /// <summary>Reuse one block's weights for every layer (ALBERT's cross-layer sharing).</summary>
    public bool ShareLayers { get; init; }
    /// <summary>Standard deviation of the normal initialisation of linear and embedding weights.</summary>
    public double InitStd { get; init; } = 0.02;

    /// <summary>True for decoders: every position attends only to itself and earlier positions.</summary>
    public virtual bool IsCausal => false;

    /// <summary>True when a sequence is summarised by its last real token (decoders, XLNet) rather than by [CLS] at position 0.</summary>
    public virtual bool PoolsLastToken => IsCausal;

    /// <summary>The embedding width actually used (EmbeddingSize, or HiddenSize when unset).</summary>
    public int EmbeddingWidth => EmbeddingSize == 0 ? HiddenSize : EmbeddingSize;

    /// <summary>Throws an ArgumentException naming the first inconsistent field.</summary>
    public virtual void Validate()
    {
        Positive(VocabSize, nameof(VocabSize));
        Positive(HiddenSize, nameof(HiddenSize));
        Positive(Layers, nameof(Layers));
        Positive(Heads, nameof(Heads));
        Positive(IntermediateSize, nameof(IntermediateSize));
        Positive(MaxPositions, nameof(MaxPositions));
        if (HiddenSize % Heads != 0)
            throw new ArgumentException($"{nameof(HiddenSize)} ({HiddenSize}) must be divisible by {nameof(Heads)} ({Heads}).", nameof(HiddenSize));
        if (TypeVocabSize < 0) throw new ArgumentException($"{nameof(TypeVocabSize)} must be >= 0, got {TypeVocabSize}.", nameof(TypeVocabSize));
        if (EmbeddingSize < 0)
            throw new ArgumentException($"{nameof(EmbeddingSize)} must be 0 (= hidden) or positive, got {EmbeddingSize}.", nameof(EmbeddingSize));
        if (PositionOffset < 0) throw new ArgumentException($"{nameof(PositionOffset)} must be >= 0, got {PositionOffset}.", nameof(PositionOffset));
        Probability(Dropout, nameof(Dropout));
        Probability(AttentionDropout, nameof(AttentionDropout));
        if (!(LayerNormEps > 0)) throw new ArgumentException($"{nameof(LayerNormEps)} must be > 0, got {LayerNormEps}.", nameof(LayerNormEps));
        if (!(InitStd > 0)) throw new ArgumentException($"{nameof(InitStd)} must be > 0, got {InitStd}.", nameof(InitStd));
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new ArgumentException($"{nameof(PadTokenId)} ({PadTokenId}) must be a token id below {nameof(VocabSize)} ({VocabSize}).", nameof(PadTokenId));
    }

    protected static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be > 0, got {value}.", name);
    }

    protected static void Probability(double value, string name)
    {
        if (!(value >= 0 && value < 1)) throw new ArgumentException($"{name} must be in [0, 1), got {value}.", name);
    }
}
