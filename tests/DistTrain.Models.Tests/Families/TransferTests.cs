using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>Fine-tuning starts from the pre-trained weights: every backbone tensor is copied, none is left at its init.</summary>
public sealed class TransferTests
{
    [Fact]
    public void Loading_a_pretrained_backbone_copies_every_tensor()
    {
        Tiny.Seed(1);
        using var pretrained = new EncoderForPreTraining(Tiny.Roberta(), PairObjective.None);
        Tiny.Seed(2);
        using var classifier = new SequenceClassifier(ModelFactory.CreateBackbone(Tiny.Roberta()), 3);
        var source = pretrained.Backbone.state_dict();
        var before = classifier.Backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.Contains(before, kv => !kv.Value.allclose(source[kv.Key], rtol: 0, atol: 0));   // different seeds: different weights

        ModelFactory.LoadBackbone(classifier.Backbone, pretrained.Backbone);

        var after = classifier.Backbone.state_dict();
        Assert.Equal(source.Keys.Order(), after.Keys.Order());
        foreach (var (name, tensor) in after)
            Assert.True(tensor.allclose(source[name], rtol: 0, atol: 0), $"{name} was not copied");
        // The classifier owns copies: changing the source later does not reach it.
        string first = source.Keys.First();
        using (no_grad()) source[first].add_(1.0);
        Assert.False(classifier.Backbone.state_dict()[first].allclose(source[first], rtol: 0, atol: 0));
    }
}
