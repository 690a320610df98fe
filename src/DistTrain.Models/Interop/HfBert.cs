using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// Hugging Face BERT (BertForPreTraining, BertForMaskedLM) and RoBERTa (RobertaForMaskedLM) checkpoints in and out of
/// <see cref="EncoderForPreTraining"/>. RoBERTa is BERT's modelling code under another prefix, with positions offset by
/// padding_idx + 1 (<see cref="ModelConfig.PositionOffset"/>) and one token type. See docs/interop.md.
/// </summary>
public static class HfBert
{
    /// <summary>config.json's model_type for BERT.</summary>
    public const string BertType = "bert";

    /// <summary>config.json's model_type for RoBERTa.</summary>
    public const string RobertaType = "roberta";

    /// <summary>
    /// The DistTrain config a checkpoint describes. The heads come from the tensors: cls.seq_relationship means
    /// BertForPreTraining (NSP), cls.predictions alone BertForMaskedLM, classifier.* a *ForSequenceClassification
    /// (see <see cref="Create"/>). A checkpoint with none of these heads is refused.
    /// </summary>
    /// <exception cref="InvalidDataException">config.json asks for math this model does not do; the message names the field.</exception>
    public static ModelConfig ReadConfig(string dir, int specialRows)
    {
        var (json, path) = HfCheckpoint.ReadJson(dir);
        var type = HfCheckpoint.Str(json, "model_type", "(missing)");
        if (type is not (BertType or RobertaType)) HfCheckpoint.RequireType(json, path, BertType);
        bool roberta = type == RobertaType;
        var names = Safetensors.Names(dir);
        if (!names.Contains(roberta ? "lm_head.bias" : "cls.predictions.bias") && !HfEncoderLayout.IsClassifier(names))
            throw new InvalidDataException($"{dir}: neither a masked-LM head ({(roberta ? "lm_head.*" : "cls.predictions.*")}) nor a sequence classifier (classifier.*); DistTrain imports "
                + (roberta ? "RobertaForMaskedLM" : "BertForPreTraining, BertForMaskedLM") + $" or {(roberta ? "Roberta" : "Bert")}ForSequenceClassification checkpoints (see docs/interop.md).");
        if (HfCheckpoint.Str(json, "position_embedding_type", "absolute") != "absolute")
            throw new InvalidDataException($"{path}: position_embedding_type '{json["position_embedding_type"]}' is not supported (absolute only).");
        if (json["is_decoder"] is JsonValue d && (bool)d) throw new InvalidDataException($"{path}: is_decoder true is not supported (a bidirectional encoder only).");
        if (json["tie_word_embeddings"] is JsonValue tie && !(bool)tie) throw new InvalidDataException($"{path}: tie_word_embeddings false is not supported (the MLM decoder is tied to the token table).");
        var gelu = HfCheckpoint.Gelu(json, path, "hidden_act", "gelu");
        // RobertaLMHead applies exact GELU whatever hidden_act says; DistTrain's head follows the blocks, so they must agree.
        if (roberta && gelu != GeluKind.Exact) throw new InvalidDataException($"{path}: hidden_act must be gelu for RoBERTa (its LM head's GELU is always exact).");
        int offset = roberta ? HfCheckpoint.OptionalInt(json, "pad_token_id") is int pad ? pad + 1 : 2 : 0;
        ModelConfig config = roberta ? new RobertaConfig() : new BertConfig { Pair = names.Contains("cls.seq_relationship.weight") ? PairObjective.NextSentence : PairObjective.None };
        return config with
        {
            VocabSize = specialRows + HfCheckpoint.Int(json, path, "vocab_size"),
            HiddenSize = HfCheckpoint.Int(json, path, "hidden_size"),
            Layers = HfCheckpoint.Int(json, path, "num_hidden_layers"),
            Heads = HfCheckpoint.Int(json, path, "num_attention_heads"),
            IntermediateSize = HfCheckpoint.Int(json, path, "intermediate_size"),
            MaxPositions = HfCheckpoint.Int(json, path, "max_position_embeddings") - offset,
            PositionOffset = offset,
            TypeVocabSize = HfCheckpoint.OptionalInt(json, "type_vocab_size") ?? 2,
            LayerNormEps = HfCheckpoint.Real(json, "layer_norm_eps", 1e-12),
            Dropout = HfCheckpoint.Real(json, "hidden_dropout_prob", 0.1),
            AttentionDropout = HfCheckpoint.Real(json, "attention_probs_dropout_prob", 0.1),
            InitStd = HfCheckpoint.Real(json, "initializer_range", 0.02),
            PadTokenId = 0,
            Gelu = gelu,
        };
    }

    /// <summary>The module a checkpoint holds: a <see cref="SequenceClassifier"/> for a classifier checkpoint, else the pre-training model.</summary>
    public static nn.Module Create(string dir, ModelConfig config) => HfEncoderLayout.CreateFor(dir, config);

    /// <summary>Copies a checkpoint into model (built by <see cref="Create"/> from <see cref="ReadConfig"/>).</summary>
    public static void Import(nn.Module model, string dir, int specialRows)
    {
        var roberta = Check(model);
        var (map, tied, architecture) = Layout(model, roberta);
        HfEncoderLayout.Import(model, dir, specialRows, architecture, map, tied);
    }

    /// <summary>Writes config.json and model.safetensors (BertForPreTraining, BertForMaskedLM or RobertaForMaskedLM names).</summary>
    /// <param name="classes">A classifier's class names in the order of its logits (config.json's id2label); null: LABEL_i.</param>
    public static void Export(nn.Module model, string dir, int specialRows, IReadOnlyDictionary<string, string>? metadata, IReadOnlyList<string>? classes = null)
    {
        var roberta = Check(model);
        var c = ModelConfigOf(model);
        if (model is EncoderForPreTraining { Pair: PairObjective.SentenceOrder }) throw new NotSupportedException("a BERT with a sentence-order head has no Hugging Face BERT layout (BertForPreTraining's head is NSP).");
        if (roberta && c.PositionOffset < 1)
            throw new NotSupportedException("a RoBERTa trained from scratch has no position offset; Hugging Face RoBERTa reads positions from padding_idx + 1 and treats a token id as padding, so it would compute another function (see docs/interop.md).");
        var (map, _, architecture) = Layout(model, roberta);
        HfEncoderLayout.Export(model, dir, specialRows, map, metadata);
        var config = HfEncoderLayout.EncoderConfig(c, specialRows, roberta ? RobertaType : BertType, architecture, c.MaxPositions + c.PositionOffset);
        config["tie_word_embeddings"] = true;
        if (roberta) config["pad_token_id"] = c.PositionOffset - 1;
        HfEncoderLayout.AddLabels(config, model, classes);
        HfEncoderLayout.WriteConfig(dir, config);
    }

    private static ModelConfig ModelConfigOf(nn.Module model) => HfEncoderLayout.BackboneConfig(model);

    /// <summary>True for RoBERTa; throws unless model is a BERT or RoBERTa pre-training model or [CLS]-pooler classifier.</summary>
    private static bool Check(nn.Module model)
    {
        var c = HfEncoderLayout.BackboneConfig(model);
        if (c is not (BertConfig or RobertaConfig))
            throw new NotSupportedException($"a {model.GetType().Name} of {c.GetType().Name} has no Hugging Face BERT/RoBERTa layout.");
        if (c.Norm != NormPlacement.Post || c.ShareLayers || c.EmbeddingWidth != c.HiddenSize || c.TypeVocabSize < 1)
            throw new NotSupportedException("only a post-LN BERT/RoBERTa with unshared layers, unfactorised embeddings and token types has the Hugging Face layout.");
        return c is RobertaConfig;
    }

    /// <summary>The key map for this model's heads, the tied copies a checkpoint may hold, and the architecture's name.</summary>
    private static (List<HfKey> Map, List<(string, string)> Tied, string Architecture) Layout(nn.Module model, bool roberta)
    {
        var c = HfEncoderLayout.BackboneConfig(model);
        string p = roberta ? "roberta." : "bert.", o = model is SequenceClassifier ? "backbone." : "encoder.";
        var map = HfEncoderLayout.Embeddings(o, p, c.TypeVocabSize > 0).ToList();
        for (int i = 0; i < c.Layers; i++) map.AddRange(HfEncoderLayout.BertLayer($"{o}layers.{i}.", $"{p}encoder.layer.{i}."));
        if (model is SequenceClassifier)
        {
            // RobertaClassificationHead is dense + tanh + out_proj on <s>: DistTrain's pooler + classifier under other names.
            map.AddRange(HfEncoderLayout.Pair("head.pooler", roberta ? "classifier.dense" : p + "pooler.dense"));
            map.AddRange(HfEncoderLayout.Pair("head.classifier", roberta ? "classifier.out_proj" : "classifier"));
            return (map, [], roberta ? "RobertaForSequenceClassification" : "BertForSequenceClassification");
        }
        var encoder = (EncoderForPreTraining)model;
        string head = roberta ? "lm_head." : "cls.predictions.";
        map.AddRange(HfEncoderLayout.Pair("mlm_head.transform", head + (roberta ? "dense" : "transform.dense")));
        map.AddRange(HfEncoderLayout.Pair("mlm_head.norm", head + (roberta ? "layer_norm" : "transform.LayerNorm")));
        map.Add(new("mlm_head.bias", head + "bias") { Vocab = true });
        bool nsp = encoder.Pair == PairObjective.NextSentence;
        if (nsp)
        {
            map.AddRange(HfEncoderLayout.Pair("pair_head.pooler", p + "pooler.dense"));
            map.AddRange(HfEncoderLayout.Pair("pair_head.classifier", "cls.seq_relationship"));
        }
        var tied = new List<(string, string)> { (head + "decoder.weight", p + "embeddings.word_embeddings.weight"), (head + "decoder.bias", head + "bias") };
        return (map, tied, roberta ? "RobertaForMaskedLM" : nsp ? "BertForPreTraining" : "BertForMaskedLM");
    }
}
