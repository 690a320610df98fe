using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>The factory maps configs to modules, rejects inconsistent configs, and backbones move under heads with their weights.</summary>
public sealed class FactoryTests
{
    [Fact]
    public void Each_config_builds_its_family()
    {
        Tiny.Seed();
        Assert.Equal(PairObjective.NextSentence, Assert.IsType<EncoderForPreTraining>(ModelFactory.Create(Tiny.Bert())).Pair);
        Assert.Equal(PairObjective.None, Assert.IsType<EncoderForPreTraining>(ModelFactory.Create(Tiny.Roberta() with { TypeVocabSize = 1 })).Pair);
        Assert.Equal(PairObjective.SentenceOrder, Assert.IsType<EncoderForPreTraining>(ModelFactory.Create(Tiny.Albert())).Pair);
        Assert.IsType<ElectraForPreTraining>(ModelFactory.Create(Tiny.Electra()));
        Assert.IsType<GptLanguageModel>(ModelFactory.Create(Tiny.Gpt()));
    }

    public static TheoryData<ModelConfig, string> BadConfigs() => new()
    {
        { Tiny.Bert() with { Heads = 5 }, "HiddenSize" },
        { Tiny.Bert() with { Layers = 0 }, "Layers" },
        { Tiny.Bert() with { VocabSize = -1 }, "VocabSize" },
        { Tiny.Bert() with { Dropout = 1.0 }, "Dropout" },
        { Tiny.Bert() with { PadTokenId = Tiny.Vocab }, "PadTokenId" },
        { Tiny.Bert() with { EmbeddingSize = -4 }, "EmbeddingSize" },
        { Tiny.Bert() with { TypeVocabSize = 1 }, "TypeVocabSize" },
        { Tiny.Electra() with { GeneratorHeads = 3 }, "GeneratorHiddenSize" },
        { Tiny.Gpt() with { EmbeddingSize = 8 }, "EmbeddingSize" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Inconsistent_configs_fail_with_a_clear_argument_exception(ModelConfig config, string mentions)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => ModelFactory.Create(config));
        Assert.Contains(mentions, error.Message);
    }

    [Fact]
    public void A_sequence_longer_than_max_positions_is_rejected()
    {
        Tiny.Seed();
        using var bert = new Transformer(Tiny.Bert());
        Assert.Throws<ArgumentException>(() => bert.forward(Tiny.Ids(1, 17), null, null));
    }

    [Fact]
    public void A_pretrained_backbone_loads_under_every_head_through_a_checkpoint_file()
    {
        Tiny.Seed();
        var config = Tiny.Bert();
        using var pretrained = (EncoderForPreTraining)ModelFactory.Create(config);
        using (no_grad()) foreach (var p in pretrained.parameters()) p.add_(randn_like(p) * 0.1);   // not the init any more
        string path = Path.Combine(Path.GetTempPath(), $"bert-backbone-{Guid.NewGuid():N}.bin");
        try
        {
            pretrained.Backbone.save(path);
            var ids = Tiny.Ids(2, 6);
            pretrained.eval();
            var reference = pretrained.Backbone.forward(ids, null, null);
            var seq = new SequenceClassifier(ModelFactory.CreateBackbone(config), 3);
            var tok = new TokenClassifier(ModelFactory.CreateBackbone(config), 5);
            var reward = new RewardModel(ModelFactory.CreateBackbone(config));
            foreach (var backbone in new[] { seq.Backbone, tok.Backbone, reward.Backbone })
            {
                backbone.load(path);
                backbone.eval();
                Assert.True(backbone.forward(ids, null, null).allclose(reference, rtol: 0, atol: 0));
            }
            seq.eval(); tok.eval(); reward.eval();
            Assert.Equal(new long[] { 2, 3 }, seq.forward(ids, null, null).shape);
            Assert.Equal(new long[] { 2, 6, 5 }, tok.forward(ids, null, null).shape);
            Assert.Equal(new long[] { 2 }, reward.forward(ids, null, null).shape);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_gpt_backbone_serves_as_a_classifier_backbone()
    {
        Tiny.Seed();
        using var gpt = new GptLanguageModel(Tiny.Gpt());
        using var classifier = new SequenceClassifier(ModelFactory.CreateBackbone(Tiny.Gpt()), 2);
        ModelFactory.LoadBackbone(classifier.Backbone, gpt.Backbone);
        classifier.eval();
        var ids = Tiny.Ids(2, 6);
        var mask = tensor(new long[,] { { 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1 } });
        var logits = classifier.forward(ids, mask, null);
        var changed = ids.clone();
        changed[0, TensorIndex.Slice(3)] = tensor(new long[] { 5, 6, 7 });
        Assert.True(logits.allclose(classifier.forward(changed, mask, null), rtol: 0, atol: 1e-6));  // pads are invisible
    }
}
