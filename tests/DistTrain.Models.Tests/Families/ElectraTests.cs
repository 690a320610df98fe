using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>ELECTRA: one shared embedding Parameter, replacement sampling without gradient, RTD labels, discriminator as encoder.</summary>
public sealed class ElectraTests
{
    [Fact]
    public void Generator_and_discriminator_share_the_token_embedding_parameter()
    {
        Tiny.Seed();
        using var electra = new ElectraForPreTraining(Tiny.Electra());
        // One Embeddings object, hence one token Parameter; the storage check guards against a silent copy.
        Assert.Same(electra.Generator.Embeddings, electra.Backbone.Embeddings);
        Assert.Equal(ModelFactory.StorageAddress(electra.Generator.Embeddings.Token.weight!), ModelFactory.StorageAddress(electra.Backbone.Embeddings.Token.weight!));
        // Counted and optimised once.
        var table = ModelFactory.StorageAddress(electra.Backbone.Embeddings.Token.weight!);
        Assert.Single(electra.parameters(), p => ModelFactory.StorageAddress(p) == table);
        long sum = electra.parameters().Sum(p => p.numel());
        Assert.Equal(sum, ModelFactory.ParameterCount(electra));
    }

    [Fact]
    public void Both_losses_update_the_shared_table()
    {
        Tiny.Seed();
        using var electra = new ElectraForPreTraining(Tiny.Electra());
        var (masked, labels) = MaskBatch(Tiny.Ids(2, 8));
        var table = electra.Backbone.Embeddings.Token.weight!;
        var terms = electra.Loss(masked, null, null, labels, new Generator(5));
        var mlmOnly = terms.Parts.Single(p => p.Name == "mlm").Terms.Sum;
        var rtdOnly = terms.Parts.Single(p => p.Name == "rtd").Terms.Sum;
        var gMlm = torch.autograd.grad([mlmOnly], [table], retain_graph: true)[0];
        var gRtd = torch.autograd.grad([rtdOnly], [table])[0];
        Assert.True(gMlm.abs().sum().item<float>() > 0);
        Assert.True(gRtd.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Corruption_replaces_only_masked_positions_and_labels_mark_real_changes()
    {
        Tiny.Seed();
        var original = Tiny.Ids(4, 8);
        var (masked, labels) = MaskBatch(original);
        var logits = randn(4, 8, Tiny.Vocab, requires_grad: true);
        var (corrupted, replaced) = ElectraForPreTraining.Corrupt(logits, masked, labels, new Generator(3));
        Assert.False(corrupted.requires_grad);
        var isMasked = labels.ne(-100);
        Assert.True(Tensors.Same(corrupted.masked_select(isMasked.logical_not()), original.masked_select(isMasked.logical_not())));
        Assert.True(Tensors.Same(replaced, corrupted.ne(original)));   // replaced exactly where the token differs
        // A generator certain of the original token replaces nothing.
        var certain = nn.functional.one_hot(original, Tiny.Vocab).to(ScalarType.Float32) * 100;
        var (_, none) = ElectraForPreTraining.Corrupt(certain, masked, labels, new Generator(3));
        Assert.False(none.any().item<bool>());
        // Same seed, same samples.
        var (again, _) = ElectraForPreTraining.Corrupt(logits, masked, labels, new Generator(3));
        Assert.True(Tensors.Same(again, corrupted));
    }

    [Fact]
    public void Loss_is_mlm_plus_lambda_times_rtd_and_the_discriminator_fine_tunes_as_an_encoder()
    {
        Tiny.Seed();
        var config = Tiny.Electra();
        using var electra = new ElectraForPreTraining(config);
        var (masked, labels) = MaskBatch(Tiny.Ids(2, 8));
        var terms = electra.Loss(masked, null, null, labels, new Generator(9));
        var mlm = terms.Parts.Single(p => p.Name == "mlm").Terms;
        var rtd = terms.Parts.Single(p => p.Name == "rtd").Terms;
        Assert.Equal(16, rtd.Count);                                       // real tokens
        Assert.Equal(rtd.Count, terms.Count);
        double expected = mlm.LocalMean().item<float>() + 50 * rtd.LocalMean().item<float>();
        Assert.Equal(expected, terms.LocalMean().item<float>(), 3);

        using var classifier = new SequenceClassifier(ModelFactory.CreateBackbone(config), 3);
        ModelFactory.LoadBackbone(classifier.Backbone, electra.Backbone);
        electra.eval(); classifier.eval();
        var ids = Tiny.Ids(2, 8);
        Assert.True(classifier.Backbone.forward(ids, null, null).allclose(electra.Backbone.forward(ids, null, null), rtol: 0, atol: 0));
    }

    /// <summary>Masks every other position from 1: maskedIds carry [MASK], labels the original id there and −100 elsewhere.</summary>
    internal static (Tensor Masked, Tensor Labels) MaskBatch(Tensor ids)
    {
        var positions = arange(ids.shape[1]).remainder(2).eq(1).unsqueeze(0).expand_as(ids);
        return (ids.masked_fill(positions, Tiny.Mask), ids.masked_fill(positions.logical_not(), -100));
    }
}
