using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>ALBERT's cross-layer sharing is real shared storage, and its factorized embedding and sharing shrink the count.</summary>
public sealed class AlbertTests(ITestOutputHelper output)
{
    [Fact]
    public void Every_layer_runs_the_same_weights_in_the_same_storage()
    {
        Tiny.Seed();
        using var albert = (EncoderForPreTraining)ModelFactory.Create(Tiny.Albert(layers: 4));
        var first = albert.Backbone.Layer(0);
        for (int i = 1; i < 4; i++)
        {
            Assert.Same(first, albert.Backbone.Layer(i));
            var a = first.parameters().ToList();
            var b = albert.Backbone.Layer(i).parameters().ToList();
            Assert.Equal(a.Select(ModelFactory.StorageAddress), b.Select(ModelFactory.StorageAddress));
        }
        // Named parameters hold one block only: layers.0.*, no layers.1.*.
        Assert.DoesNotContain(albert.named_parameters(), p => p.name.Contains("layers.1."));
    }

    [Fact]
    public void Albert_parameter_count_does_not_depend_on_depth_but_bert_does()
    {
        Tiny.Seed();
        long Count(ModelConfig c) { using var m = ModelFactory.Create(c); return ModelFactory.ParameterCount(m); }
        Assert.Equal(Count(Tiny.Albert(layers: 1)), Count(Tiny.Albert(layers: 6)));
        Assert.True(Count(Tiny.Bert() with { Layers = 6 }) > Count(Tiny.Bert() with { Layers = 1 }));
    }

    [Fact]
    public void Bert_count_matches_the_hand_formula_and_albert_is_smaller_at_4_by_256()
    {
        var albert = new AlbertConfig { VocabSize = 8192, HiddenSize = 256, Layers = 4, Heads = 4, IntermediateSize = 1024, MaxPositions = 128 };
        var report = AlbertParameterReport.Measure(albert);
        output.WriteLine(report.ToString());

        // Independent reference: count BERT's tensors by hand.
        long v = 8192, h = 256, i = 1024, p = 128, s = 2, l = 4;
        long embeddings = v * h + p * h + s * h + 2 * h;
        long layer = (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
        long mlmHead = (h * h + h) + 2 * h + v;            // transform, LayerNorm, decoder bias (decoder weight is tied)
        long pairHead = (h * h + h) + (2 * h + 2);
        Assert.Equal(embeddings + l * layer + mlmHead + pairHead, report.Bert);

        long e = 128;
        long albertExpected = (v * e + p * e + s * e + 2 * e) + (e * h + h) + layer + ((h * e + e) + 2 * e + v) + pairHead;
        Assert.Equal(albertExpected, report.Albert);
        Assert.True(report.Ratio > 2.5, report.ToString());
    }
}
