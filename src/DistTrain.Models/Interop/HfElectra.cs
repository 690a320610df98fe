using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face ELECTRA discriminator checkpoints (ElectraForPreTraining) in and out of DistTrain. Import builds an
/// <see cref="ElectraDiscriminator"/>; export writes the discriminator of an <see cref="ElectraForPreTraining"/> or an
/// <see cref="ElectraDiscriminator"/>. The generator is neither read nor written: HF publishes it as a separate
/// ElectraForMaskedLM checkpoint, and fine-tuning keeps only the discriminator. See docs/interop.md.
/// </summary>
public static class HfElectra
{
    /// <summary>config.json's model_type.</summary>
    public const string ModelType = "electra";

    /// <summary>The <see cref="ElectraConfig"/> a discriminator checkpoint describes (generator sizes left at their defaults, unused).</summary>
    public static ModelConfig ReadConfig(string dir, int specialRows)
    {
        var (json, path) = HfCheckpoint.ReadJson(dir);
        HfCheckpoint.RequireType(json, path, ModelType);
        var names = Safetensors.Names(dir);
        if (!names.Contains("discriminator_predictions.dense_prediction.weight"))
            throw new InvalidDataException($"{dir}: no discriminator head (discriminator_predictions.*); DistTrain imports ELECTRA discriminators (ElectraForPreTraining), not generators or fine-tuned classifiers (see docs/interop.md).");
        if (HfCheckpoint.Str(json, "position_embedding_type", "absolute") != "absolute")
            throw new InvalidDataException($"{path}: position_embedding_type '{json["position_embedding_type"]}' is not supported (absolute only).");
        int hidden = HfCheckpoint.Int(json, path, "hidden_size");
        int embedding = HfCheckpoint.OptionalInt(json, "embedding_size") ?? hidden;
        return new ElectraConfig
        {
            VocabSize = specialRows + HfCheckpoint.Int(json, path, "vocab_size"),
            EmbeddingSize = embedding == hidden ? 0 : embedding,
            HiddenSize = hidden,
            Layers = HfCheckpoint.Int(json, path, "num_hidden_layers"),
            Heads = HfCheckpoint.Int(json, path, "num_attention_heads"),
            IntermediateSize = HfCheckpoint.Int(json, path, "intermediate_size"),
            MaxPositions = HfCheckpoint.Int(json, path, "max_position_embeddings"),
            TypeVocabSize = HfCheckpoint.OptionalInt(json, "type_vocab_size") ?? 2,
            LayerNormEps = HfCheckpoint.Real(json, "layer_norm_eps", 1e-12),
            Dropout = HfCheckpoint.Real(json, "hidden_dropout_prob", 0.1),
            AttentionDropout = HfCheckpoint.Real(json, "attention_probs_dropout_prob", 0.1),
            InitStd = HfCheckpoint.Real(json, "initializer_range", 0.02),
            Gelu = HfCheckpoint.Gelu(json, path, "hidden_act", "gelu"),
            PadTokenId = 0,
        };
    }

    /// <summary>Copies a discriminator checkpoint into an <see cref="ElectraDiscriminator"/>.</summary>
    public static void Import(nn.Module model, string dir, int specialRows)
    {
        if (model is not ElectraDiscriminator d)
            throw new NotSupportedException($"an ELECTRA discriminator checkpoint imports into an ElectraDiscriminator, not a {model.GetType().Name} (it holds no generator).");
        HfEncoderLayout.Import(d, dir, specialRows, "ElectraForPreTraining", Map(d.Backbone.Config), []);
    }

    /// <summary>Writes config.json and model.safetensors (ElectraForPreTraining names) for the discriminator.</summary>
    public static void Export(nn.Module model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata)
    {
        if (model is not (ElectraForPreTraining or ElectraDiscriminator))
            throw new NotSupportedException($"a {model.GetType().Name} has no Hugging Face ELECTRA layout (an ELECTRA pre-training model or discriminator is needed).");
        var c = ((IHasBackbone)model).Backbone.Config;
        if (c.Norm != NormPlacement.Post || c.ShareLayers || c.TypeVocabSize < 1 || c.PositionOffset != 0)
            throw new NotSupportedException("only a post-LN ELECTRA with unshared layers and token types has the Hugging Face layout.");
        HfEncoderLayout.Export(model, dir, specialRows, Map(c), metadata);
        var config = HfEncoderLayout.EncoderConfig(c, specialRows, ModelType, "ElectraForPreTraining", c.MaxPositions);
        config["embedding_size"] = c.EmbeddingWidth;
        HfEncoderLayout.WriteConfig(dir, config);
    }

    /// <summary>discriminator.* and rtd_head.* (the names inside both ELECTRA modules) ↔ ElectraForPreTraining's.</summary>
    private static List<HfKey> Map(ModelConfig c)
    {
        var map = HfEncoderLayout.Embeddings("discriminator.", "electra.", c.TypeVocabSize > 0).ToList();
        // ELECTRA normalises at width E, then projects E→H (electra.embeddings_project), as DistTrain's factorised embeddings do.
        if (c.EmbeddingWidth != c.HiddenSize) map.AddRange(HfEncoderLayout.Pair("discriminator.projection", "electra.embeddings_project"));
        for (int i = 0; i < c.Layers; i++) map.AddRange(HfEncoderLayout.BertLayer($"discriminator.layers.{i}.", $"electra.encoder.layer.{i}."));
        map.AddRange(HfEncoderLayout.Pair("rtd_head.dense", "discriminator_predictions.dense"));
        map.AddRange(HfEncoderLayout.Pair("rtd_head.classifier", "discriminator_predictions.dense_prediction"));
        return map;
    }
}
