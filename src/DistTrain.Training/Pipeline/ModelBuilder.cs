using DistTrain.Contracts.Specs;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Training.Checkpointing;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>Turns a stage's model spec into a TorchSharp module, and loads earlier stages' weights into it.</summary>
public static class ModelBuilder
{
    /// <summary>The model-zoo config for a spec; <paramref name="vocabSize"/> is the real sub-vocabulary size.</summary>
    public static ModelConfig Config(ModelSpec m, ObjectiveSpec? objective, int vocabSize)
    {
        var pair = objective is MlmSpec mlm ? mlm.SentenceTask switch
        {
            SentenceTask.Nsp => PairObjective.NextSentence,
            SentenceTask.Sop => PairObjective.SentenceOrder,
            _ => PairObjective.None,
        } : PairObjective.None;
        ModelConfig config = m.Family switch
        {
            ModelFamily.Bert => new BertConfig { Pair = pair },
            ModelFamily.Roberta => new RobertaConfig(),
            ModelFamily.Albert => new AlbertConfig { Pair = pair },
            ModelFamily.Electra => new ElectraConfig
            {
                GeneratorHiddenSize = m.Generator?.Hidden ?? Math.Max(m.Heads, m.Hidden / 4),
                GeneratorHeads = m.Generator?.Heads ?? 1,
                GeneratorIntermediateSize = m.Generator?.Ffn ?? Math.Max(4, m.Ffn / 4),
                GeneratorLayers = m.Generator?.Layers ?? 0,
                RtdWeight = objective is RtdSpec rtd ? rtd.DiscriminatorWeight : 50,
            },
            ModelFamily.Gpt => new GptConfig(),
            ModelFamily.Xlnet => new XLNetConfig(),
            ModelFamily.T5 => new T5Config { DecoderStartTokenId = SpecialTokens.Pad },
            _ => throw new ArgumentException($"no model for family {m.Family}"),
        };
        return config with
        {
            VocabSize = vocabSize,
            HiddenSize = m.Hidden,
            Layers = m.Layers,
            Heads = m.Heads,
            IntermediateSize = m.Ffn,
            MaxPositions = m.MaxLen,
            EmbeddingSize = m.EmbeddingWidth == m.Hidden ? 0 : m.EmbeddingWidth,
            Norm = m.NormPosition == LayerNormPosition.Pre ? NormPlacement.Pre : NormPlacement.Post,
            Gelu = m.Gelu == GeluForm.Tanh ? GeluKind.Tanh : GeluKind.Exact,
            Dropout = m.Dropout,
            AttentionDropout = m.Dropout,
            PadTokenId = SpecialTokens.Pad,
            TypeVocabSize = m.Family is ModelFamily.Gpt or ModelFamily.Xlnet or ModelFamily.T5 ? 0 : 2,
        };
    }

    /// <summary>The transformer under a head or inside a pre-training model.</summary>
    public static Backbone BackboneOf(nn.Module module) => module switch
    {
        IHasBackbone b => b.Backbone,
        XLNetLanguageModel x => x.Backbone,
        IHeadOnBackbone h => h.Backbone,
        _ => throw new ArgumentException($"{module.GetType().Name} has no transformer backbone"),
    };

    /// <summary>Loads model weights from a stage's newest checkpoint into <paramref name="module"/>.</summary>
    public static void LoadFinal(nn.Module module, StageArtifacts stage)
    {
        string dir = new CheckpointStore(stage.Checkpoints).Latest()
            ?? throw new InvalidOperationException($"stage '{stage.Stage}' has no checkpoint under {stage.Checkpoints}; it must finish before this stage");
        CheckpointStore.Verify(dir);
        module.load(Path.Combine(dir, "model.bin"));
    }

    /// <summary>
    /// Initialises <paramref name="target"/> from a trained <paramref name="source"/>: every weight when they are the same
    /// kind of module (SFT from a pre-trained GPT), else the backbone only (a classifier from a pre-trained encoder).
    /// </summary>
    public static void Transfer(nn.Module source, nn.Module target)
    {
        using var _ = no_grad();
        if (source.GetType() == target.GetType())
        {
            target.load_state_dict(source.state_dict(), strict: true);
            return;
        }
        // T5 fine-tunes as a whole: the text-to-text classifier is the pre-trained encoder-decoder plus label words.
        if (source is T5Model pretrained && target is T5TextClassifier classifier)
        {
            classifier.Model.load_state_dict(pretrained.state_dict(), strict: true);
            return;
        }
        // For ELECTRA the backbone is the discriminator, the part fine-tuning keeps.
        ModelFactory.LoadBackbone(BackboneOf(target), BackboneOf(source));
    }
}
