using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face ALBERT checkpoints (AlbertForPreTraining, AlbertForMaskedLM) in and out of <see cref="EncoderForPreTraining"/>
/// with an <see cref="AlbertConfig"/>: factorised embeddings (LayerNorm at width E, then E→H) and one block shared by
/// every layer. Only one layer group of one layer is supported, as every published ALBERT has. See docs/interop.md.
/// </summary>
public static class HfAlbert
{
    /// <summary>config.json's model_type.</summary>
    public const string ModelType = "albert";

    /// <summary>The <see cref="AlbertConfig"/> a checkpoint describes; the pair head comes from the tensors (sop_classifier = SOP).</summary>
    public static ModelConfig ReadConfig(string dir, int specialRows)
    {
        var (json, path) = HfCheckpoint.ReadJson(dir);
        HfCheckpoint.RequireType(json, path, ModelType);
        var names = Safetensors.Names(dir);
        if (!names.Contains("predictions.bias") && !HfEncoderLayout.IsClassifier(names))
            throw new InvalidDataException($"{dir}: neither a masked-LM head (predictions.*) nor a sequence classifier (classifier.*); DistTrain imports AlbertForPreTraining, AlbertForMaskedLM or AlbertForSequenceClassification checkpoints (see docs/interop.md).");
        foreach (var field in new[] { "num_hidden_groups", "inner_group_num" })
            if ((HfCheckpoint.OptionalInt(json, field) ?? 1) != 1)
                throw new InvalidDataException($"{path}: {field} {json[field]} is not supported (DistTrain shares one block across all layers: 1 group of 1 layer).");
        if (HfCheckpoint.Str(json, "position_embedding_type", "absolute") != "absolute")
            throw new InvalidDataException($"{path}: position_embedding_type '{json["position_embedding_type"]}' is not supported (absolute only).");
        int hidden = HfCheckpoint.Int(json, path, "hidden_size"), embedding = HfCheckpoint.OptionalInt(json, "embedding_size") ?? 128;
        // HF ALBERT always maps E→H with a Linear; DistTrain has that projection only when E ≠ H.
        if (embedding == hidden) throw new InvalidDataException($"{path}: embedding_size equal to hidden_size ({hidden}) is not supported (DistTrain has no E→H projection then).");
        return new AlbertConfig
        {
            Pair = names.Contains("sop_classifier.classifier.weight") ? PairObjective.SentenceOrder : PairObjective.None,
            VocabSize = specialRows + HfCheckpoint.Int(json, path, "vocab_size"),
            EmbeddingSize = embedding,
            HiddenSize = hidden,
            Layers = HfCheckpoint.Int(json, path, "num_hidden_layers"),
            Heads = HfCheckpoint.Int(json, path, "num_attention_heads"),
            IntermediateSize = HfCheckpoint.Int(json, path, "intermediate_size"),
            MaxPositions = HfCheckpoint.Int(json, path, "max_position_embeddings"),
            TypeVocabSize = HfCheckpoint.OptionalInt(json, "type_vocab_size") ?? 2,
            LayerNormEps = HfCheckpoint.Real(json, "layer_norm_eps", 1e-12),
            Dropout = HfCheckpoint.Real(json, "hidden_dropout_prob", 0.0),
            AttentionDropout = HfCheckpoint.Real(json, "attention_probs_dropout_prob", 0.0),
            InitStd = HfCheckpoint.Real(json, "initializer_range", 0.02),
            Gelu = HfCheckpoint.Gelu(json, path, "hidden_act", "gelu_new"),
            ShareLayers = true,
            PadTokenId = 0,
        };
    }

    /// <summary>Copies a checkpoint into an ALBERT pre-training model or classifier built by <see cref="HfEncoderLayout.CreateFor"/>.</summary>
    public static void Import(nn.Module model, string dir, int specialRows)
    {
        Check(model);
        HfEncoderLayout.Import(model, dir, specialRows, Architecture(model), Map(model),
            [("predictions.decoder.weight", "albert.embeddings.word_embeddings.weight"), ("predictions.decoder.bias", "predictions.bias")]);
    }

    /// <summary>Writes config.json and model.safetensors (AlbertForPreTraining or AlbertForMaskedLM names).</summary>
    /// <param name="classes">A classifier's class names in the order of its logits (config.json's id2label); null: LABEL_i.</param>
    public static void Export(nn.Module model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata, IReadOnlyList<string>? classes = null)
    {
        var c = Check(model);
        HfEncoderLayout.Export(model, dir, specialRows, Map(model), metadata);
        var config = HfEncoderLayout.EncoderConfig(c, specialRows, ModelType, Architecture(model), c.MaxPositions);
        config["embedding_size"] = c.EmbeddingWidth;
        config["num_hidden_groups"] = 1;   // one shared block: DistTrain's ALBERT
        config["inner_group_num"] = 1;
        config["tie_word_embeddings"] = true;
        HfEncoderLayout.AddLabels(config, model, classes);
        HfEncoderLayout.WriteConfig(dir, config);
    }

    private static ModelConfig Check(nn.Module model)
    {
        var c = HfEncoderLayout.BackboneConfig(model);
        if (c is not AlbertConfig)
            throw new NotSupportedException($"a {model.GetType().Name} of {c.GetType().Name} has no Hugging Face ALBERT layout.");
        if (c.Norm != NormPlacement.Post || !c.ShareLayers || c.EmbeddingWidth == c.HiddenSize || c.TypeVocabSize < 1 || c.PositionOffset != 0)
            throw new NotSupportedException("only a post-LN ALBERT with shared layers, factorised embeddings (E < H) and token types has the Hugging Face layout.");
        if (model is EncoderForPreTraining { Pair: PairObjective.NextSentence }) throw new NotSupportedException("an ALBERT with an NSP head has no Hugging Face ALBERT layout (AlbertForPreTraining's head is SOP).");
        return c;
    }

    private static string Architecture(nn.Module m) => m switch
    {
        SequenceClassifier => "AlbertForSequenceClassification",
        EncoderForPreTraining { Pair: PairObjective.SentenceOrder } => "AlbertForPreTraining",
        _ => "AlbertForMaskedLM",
    };

    /// <summary>DistTrain names ↔ ALBERT's (the one shared block is albert_layer_groups.0.albert_layers.0).</summary>
    private static List<HfKey> Map(nn.Module m)
    {
        var c = HfEncoderLayout.BackboneConfig(m);
        string b = m is SequenceClassifier ? "backbone." : "encoder.";
        var map = HfEncoderLayout.Embeddings(b, "albert.", c.TypeVocabSize > 0).ToList();
        map.AddRange(HfEncoderLayout.Pair(b + "projection", "albert.encoder.embedding_hidden_mapping_in"));
        string o = b + "layers.0.", h = "albert.encoder.albert_layer_groups.0.albert_layers.0.";
        foreach (var p in new[] { "weight", "bias" })
        {
            map.Add(new(o + "attention.qkv." + p, h + "attention.query." + p, h + "attention.key." + p, h + "attention.value." + p));
            map.Add(new(o + "attention.proj." + p, h + "attention.dense." + p));
            map.Add(new(o + "attention_norm." + p, h + "attention.LayerNorm." + p));
            map.Add(new(o + "fc_in." + p, h + "ffn." + p));
            map.Add(new(o + "fc_out." + p, h + "ffn_output." + p));
            map.Add(new(o + "mlp_norm." + p, h + "full_layer_layer_norm." + p));
        }
        if (m is SequenceClassifier)
        {
            map.AddRange(HfEncoderLayout.Pair("head.pooler", "albert.pooler"));
            map.AddRange(HfEncoderLayout.Pair("head.classifier", "classifier"));
            return map;
        }
        map.AddRange(HfEncoderLayout.Pair("mlm_head.transform", "predictions.dense"));
        map.AddRange(HfEncoderLayout.Pair("mlm_head.norm", "predictions.LayerNorm"));
        map.Add(new("mlm_head.bias", "predictions.bias") { Vocab = true });
        if (m is EncoderForPreTraining { Pair: PairObjective.SentenceOrder })
        {
            map.AddRange(HfEncoderLayout.Pair("pair_head.pooler", "albert.pooler"));
            map.AddRange(HfEncoderLayout.Pair("pair_head.classifier", "sop_classifier.classifier"));
        }
        return map;
    }
}
