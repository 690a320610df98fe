namespace DistTrain.Models;

/// <summary>ALBERT: BERT with a factorized embedding (V×E then E→H, E &lt; H), one block shared by all layers, and SOP.</summary>
/// <remarks>
/// Both changes cut parameters, not compute: a forward still runs L blocks. The model is
/// <see cref="EncoderForPreTraining"/>; its MLM head projects H→E and decodes with the tied V×E table.
/// </remarks>
public sealed record AlbertConfig : ModelConfig
{
    public PairObjective Pair { get; init; } = PairObjective.SentenceOrder;

    /// <summary>ALBERT-base defaults: V 30000, E 128, H 768, L 12 sharing one block, SOP, no dropout (the paper drops it).</summary>
    public AlbertConfig()
    {
        VocabSize = 30000;
        EmbeddingSize = 128;
        ShareLayers = true;
        Dropout = 0.0;
        AttentionDropout = 0.0;
    }

    /// <summary>The BERT of the same vocabulary, depth and width: E = H, unshared layers, same pair objective.</summary>
    public BertConfig ToBertEquivalent() => new()
    {
        VocabSize = VocabSize, HiddenSize = HiddenSize, Layers = Layers, Heads = Heads, IntermediateSize = IntermediateSize,
        MaxPositions = MaxPositions, TypeVocabSize = TypeVocabSize, LayerNormEps = LayerNormEps, PadTokenId = PadTokenId,
        Dropout = Dropout, AttentionDropout = AttentionDropout, InitStd = InitStd, Pair = Pair,
    };
}

/// <summary>Parameter counts of an ALBERT and the BERT of the same depth and width.</summary>
public sealed record AlbertParameterReport(long Albert, long Bert)
{
    /// <summary>Bert / Albert.</summary>
    public double Ratio => (double)Bert / Albert;

    /// <summary>Builds both pre-training models (MLM + pair heads included) and counts their distinct parameters.</summary>
    public static AlbertParameterReport Measure(AlbertConfig config)
    {
        using var albert = ModelFactory.Create(config);
        using var bert = ModelFactory.Create(config.ToBertEquivalent());
        return new AlbertParameterReport(ModelFactory.ParameterCount(albert), ModelFactory.ParameterCount(bert));
    }

    public override string ToString() => $"ALBERT {Albert:N0} vs BERT {Bert:N0} parameters ({Ratio:F1}× fewer)";
}
