using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>
/// XLNet and T5: finite-difference checks of the new attention, gradient-exact mask tests (what a position must not see
/// has exactly zero gradient, what it may see has some), T5's buckets by hand, and lengths beyond training.
/// </summary>
public sealed class XLNetT5Tests
{
    private static XLNetConfig Xl(int hidden = 32) => new()
    {
        VocabSize = Tiny.Vocab, HiddenSize = hidden, Layers = 2, Heads = 2, IntermediateSize = 2 * hidden, MaxPositions = 16,
        Dropout = 0, AttentionDropout = 0,
    };

    private static T5Config T5(int hidden = 32) => new()
    {
        VocabSize = Tiny.Vocab, HiddenSize = hidden, Layers = 2, Heads = 2, IntermediateSize = 2 * hidden, MaxPositions = 16,
        RelativeBuckets = 8, RelativeMaxDistance = 16, Dropout = 0, AttentionDropout = 0,
    };

    // ---- finite differences (float64) ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Relative_attention_gradients_match_finite_differences(bool twoStream)
    {
        Tiny.Seed();
        var attention = new RelativeAttention(8, 2, attentionDropout: 0.5, initStd: 0.3).to(ScalarType.Float64);
        attention.eval();
        var content = randn([2, 5, 8], ScalarType.Float64).requires_grad_(true);
        var query = twoStream ? randn([2, 5, 8], ScalarType.Float64).requires_grad_(true) : content;
        var ranks = tensor(new long[,] { { 3, 0, 4, 1, 2 }, { 0, 1, 2, 3, 4 } });
        var (contentMask, queryMask) = PermutationMasks.Build(ranks, tensor(new long[,] { { 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0 } }), ScalarType.Float64);
        var relative = RelativeAttention.Sinusoid(5, 8, ScalarType.Float64, CPU);
        var project = GradCheck.Projection([2, 5, 8]);
        List<(string, Tensor)> wrt = [("content", content), .. GradCheck.ParametersOf(attention)];
        if (twoStream) wrt.Add(("query", query));
        GradCheck.Check(() => project(attention.forward(query, content, relative, twoStream ? queryMask : contentMask)), wrt);
    }

    [Fact]
    public void Two_stream_xlnet_gradients_match_finite_differences()
    {
        Tiny.Seed();
        var encoder = new XLNetEncoder(Xl(8) with { InitStd = 0.3 }).to(ScalarType.Float64);
        encoder.eval();
        var x = randn([2, 5, 8], ScalarType.Float64).requires_grad_(true);
        var ranks = tensor(new long[,] { { 3, 0, 4, 1, 2 }, { 4, 2, 0, 1, 3 } });
        var project = GradCheck.Projection([2, 5, 8]);
        GradCheck.Check(() => { var (h, g) = encoder.TwoStream(x, ranks, null); return project(h) + project(g); },
            [("x", x), .. GradCheck.ParametersOf(encoder).Where(p => !p.Item1.StartsWith("token"))], samplesPerTensor: 3);
    }

    [Fact]
    public void T5_attention_with_position_bias_gradients_match_finite_differences()
    {
        Tiny.Seed();
        var attention = new T5Attention(8, 2, 0.5).to(ScalarType.Float64);
        var bias = new RelativePositionBias(8, 16, 2, bidirectional: false, initStd: 0.3).to(ScalarType.Float64);
        attention.eval();
        var x = randn([2, 5, 8], ScalarType.Float64).requires_grad_(true);
        var mask = AttentionMask.Build(null, 5, causal: true, ScalarType.Float64, CPU)!;
        var project = GradCheck.Projection([2, 5, 8]);
        GradCheck.Check(() => project(attention.forward(x, x, bias.forward(5, 5, CPU) + mask)),
            [("x", x), .. GradCheck.ParametersOf(attention), .. GradCheck.ParametersOf(bias, "bias.")], samplesPerTensor: 8);
    }

    [Fact]
    public void T5_encoder_decoder_gradients_match_finite_differences()
    {
        Tiny.Seed();
        using var t5 = new T5Model(T5(8)).to(ScalarType.Float64);
        t5.eval();
        var ids = tensor(new long[,] { { 4, 5, 6, 7, 8 }, { 9, 10, 11, 0, 0 } });
        var mask = ids.ne(0).to(ScalarType.Int64);
        var decoder = tensor(new long[,] { { 0, 12, 13 }, { 0, 14, 15 } });
        var project = GradCheck.Projection([2, 3, Tiny.Vocab]);
        GradCheck.Check(() => project(t5.forward(ids, mask, decoder)), [.. GradCheck.ParametersOf(t5)], samplesPerTensor: 3);
    }

    // ---- masks, by gradient: d(output i)/d(input j) is exactly zero where j must not be seen ----

    /// <summary>‖d(w · out[b, i]) / d x[b, j]‖ for every (i, j) of row b, w a fixed random direction: (T, T).</summary>
    /// <remarks>Not a plain sum: the sum of a LayerNorm output over its features is constant, so its gradient is zero.</remarks>
    private static double[,] Influence(Func<Tensor, Tensor> run, Tensor x, int b)
    {
        long t = x.shape[1];
        var result = new double[t, t];
        var direction = randn(x.shape[2], x.dtype, x.device);
        for (int i = 0; i < t; i++)
        {
            var input = x.detach().clone().requires_grad_(true);
            var output = run(input)[b, i];                                                     // (H)
            var grad = torch.autograd.grad([(output * direction).sum()], [input])[0];          // (B, T, H)
            for (int j = 0; j < t; j++) result[i, j] = grad[b, j].abs().sum().to(ScalarType.Float64).item<double>();
        }
        return result;
    }

    [Fact]
    public void Xlnet_content_stream_sees_exactly_the_positions_up_to_itself_in_the_order()
    {
        Tiny.Seed();
        using var encoder = new XLNetEncoder(Xl());
        encoder.eval();
        var ranks = tensor(new long[,] { { 2, 5, 0, 3, 1, 4 } });
        var x = randn(1, 6, 32);
        var influence = Influence(input => encoder.TwoStream(input, ranks, null).Content, x, 0);
        var r = ranks[0].data<long>().ToArray();
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                if (r[j] <= r[i]) Assert.True(influence[i, j] > 0, $"content {i} should see {j}");
                else Assert.Equal(0.0, influence[i, j]);
    }

    [Fact]
    public void Xlnet_query_stream_sees_earlier_positions_in_the_order_but_never_its_own_content()
    {
        Tiny.Seed();
        using var encoder = new XLNetEncoder(Xl());
        encoder.eval();
        var ranks = tensor(new long[,] { { 2, 5, 0, 3, 1, 4 } });
        var x = randn(1, 6, 32);
        var influence = Influence(input => encoder.TwoStream(input, ranks, null).Query, x, 0);
        var r = ranks[0].data<long>().ToArray();
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(0.0, influence[i, i]);
            for (int j = 0; j < 6; j++)
                if (r[j] < r[i]) Assert.True(influence[i, j] > 0, $"query {i} should see {j}");
                else Assert.Equal(0.0, influence[i, j]);
        }
    }

    [Fact]
    public void Xlnet_query_stream_knows_its_own_position()
    {
        // Same visible content, different target positions: the query stream output must differ (relative encoding).
        Tiny.Seed();
        using var encoder = new XLNetEncoder(Xl());
        encoder.eval();
        var x = randn(1, 4, 32);
        var a = encoder.TwoStream(x, tensor(new long[,] { { 0, 1, 2, 3 } }), null).Query;   // position 3 predicted after 0,1,2
        var b = encoder.TwoStream(x, tensor(new long[,] { { 0, 1, 3, 2 } }), null).Query;   // position 2 predicted after 0,1
        Assert.False(a[0, 3].allclose(b[0, 2], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Xlnet_padding_is_invisible_to_both_streams()
    {
        Tiny.Seed();
        using var encoder = new XLNetEncoder(Xl());
        encoder.eval();
        var ranks = tensor(new long[,] { { 1, 0, 2, 3, 4, 5 } });
        var padding = tensor(new long[,] { { 1, 1, 1, 1, 0, 0 } });
        var x = randn(1, 6, 32);
        foreach (bool query in new[] { false, true })
        {
            var influence = Influence(input => { var (h, g) = encoder.TwoStream(input, ranks, padding); return query ? g : h; }, x, 0);
            for (int i = 0; i < 4; i++) { Assert.Equal(0.0, influence[i, 4]); Assert.Equal(0.0, influence[i, 5]); }
        }
    }

    [Fact]
    public void T5_decoder_is_causal_and_cross_attention_ignores_encoder_padding()
    {
        Tiny.Seed();
        using var t5 = new T5Model(T5());
        t5.eval();
        var encoderMask = tensor(new long[,] { { 1, 1, 1, 0, 0 } });
        var encoded = t5.Encode(tensor(new long[,] { { 4, 5, 6, 0, 0 } }), encoderMask).detach();   // (1, 5, H)
        var y = randn(1, 6, 32);
        var causal = Influence(input => t5.DecodeEmbedded(input, encoded, encoderMask), y, 0);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                if (j <= i) Assert.True(causal[i, j] > 0, $"decoder {i} should see {j}");
                else Assert.Equal(0.0, causal[i, j]);

        // Gradient of every decoder position with respect to the encoder states: zero exactly at the padded ones.
        var enc = encoded.clone().requires_grad_(true);
        var grad = torch.autograd.grad([t5.DecodeEmbedded(y, enc, encoderMask).sum()], [enc])[0];
        for (int s = 0; s < 5; s++)
            if (s < 3) Assert.True(grad[0, s].abs().sum().item<float>() > 0);
            else Assert.Equal(0f, grad[0, s].abs().sum().item<float>());
    }

    [Fact]
    public void T5_encoder_is_bidirectional_and_ignores_padding()
    {
        Tiny.Seed();
        using var t5 = new T5Model(T5());
        t5.eval();
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 0 } });
        var influence = Influence(input => t5.EncodeEmbedded(input, mask), randn(1, 5, 32), 0);
        for (int i = 0; i < 4; i++)
        {
            for (int j = 0; j < 4; j++) Assert.True(influence[i, j] > 0);
            Assert.Equal(0.0, influence[i, 4]);
        }
    }

    // ---- positions ----

    [Fact]
    public void T5_buckets_match_the_reference_formula_by_hand()
    {
        // 32 buckets, max distance 128. Bidirectional: 16 per sign, 8 exact; key − query.
        var relative = tensor(new long[] { 0, -1, 1, -7, -8, -12, -200, 200 });
        Assert.Equal(new long[] { 0, 1, 17, 7, 8, 9, 15, 31 }, RelativePositionBias.Bucket(relative, true, 32, 128).data<long>().ToArray());
        // −12: 8 + floor(log(12/8) / log(128/8) · 8) = 8 + floor(1.169) = 9.
        // Decoder: keys after the query share bucket 0; 16 exact distances.
        var back = tensor(new long[] { 5, 0, -5, -16, -1000 });
        Assert.Equal(new long[] { 0, 0, 5, 16, 31 }, RelativePositionBias.Bucket(back, false, 32, 128).data<long>().ToArray());
    }

    [Fact]
    public void Relative_models_run_beyond_their_trained_length_and_absolute_ones_cannot()
    {
        Tiny.Seed();
        using var xlnet = new XLNetEncoder(Xl());
        using var t5 = new T5Model(T5());
        using var bert = new Transformer(Tiny.Bert());
        var ids = Tiny.Ids(1, 40);                                   // MaxPositions is 16 in every config here
        Assert.Equal(new long[] { 1, 40, 32 }, xlnet.forward(ids, null, null).shape);
        Assert.Equal(new long[] { 1, 40, 32 }, t5.Encode(ids, null).shape);
        Assert.Throws<ArgumentException>(() => bert.forward(ids, null, null));
    }

    [Fact]
    public void Xlnet_pretrained_stack_loads_under_a_classifier_and_t5_scores_every_label_word()
    {
        Tiny.Seed();
        using var lm = (XLNetLanguageModel)ModelFactory.Create(Xl());
        using var classifier = new SequenceClassifier(ModelFactory.CreateBackbone(Xl()), 3);
        ModelFactory.LoadBackbone(classifier.Backbone, lm.Backbone);
        lm.eval(); classifier.eval();
        var ids = Tiny.Ids(2, 7);
        Assert.True(classifier.Backbone.forward(ids, null, null).allclose(lm.Backbone.forward(ids, null, null), rtol: 0, atol: 0));

        using var t5 = new T5TextClassifier(new T5Model(T5()), [[20, 2], [21, 22, 2], [23, 2]]);
        t5.eval();
        var scores = t5.Classify(ids, null);                         // (2, 3) log-likelihoods
        Assert.Equal(new long[] { 2, 3 }, scores.shape);
        Assert.True(scores.le(0).all().item<bool>());
        // Class 1's score is the sum of its two tokens' log-probabilities under teacher forcing, computed here directly.
        var logp = t5.Model.forward(ids, null, tensor(new long[,] { { 0, 21, 22 }, { 0, 21, 22 } })).log_softmax(-1);
        var expected = logp[TensorIndex.Colon, 0, 21] + logp[TensorIndex.Colon, 1, 22] + logp[TensorIndex.Colon, 2, 2];
        Assert.True(scores[TensorIndex.Colon, 1].allclose(expected, rtol: 1e-5, atol: 1e-5));
    }
}
