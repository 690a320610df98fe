namespace DistTrain.Models;

/// <summary>RoBERTa: the BERT architecture trained with MLM only (no pair objective, one segment).</summary>
/// <remarks>
/// What makes RoBERTa RoBERTa is mostly outside the model and belongs to data and training: dynamic masking (a new
/// mask each time a sequence is served, rather than BERT's masks fixed at preprocessing), packing full 512-token
/// sequences across document boundaries instead of sentence pairs, byte-level BPE, larger batches and more data.
/// The model built from this config is <see cref="EncoderForPreTraining"/> with <see cref="PairObjective.None"/>.
/// Hugging Face checkpoints offset positions by pad id + 1; importing them needs that offset handled by the loader.
/// </remarks>
public sealed record RobertaConfig : ModelConfig
{
    /// <summary>RoBERTa-base defaults: V 50265, one segment, pad id 1, LayerNorm eps 1e-5, otherwise BERT-base.</summary>
    public RobertaConfig()
    {
        VocabSize = 50265;
        TypeVocabSize = 1;
        PadTokenId = 1;
        LayerNormEps = 1e-5;
    }
}
