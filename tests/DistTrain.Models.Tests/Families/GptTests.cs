using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Families;

/// <summary>GPT generation: seeded sampling is deterministic, greedy is argmax, bounds and EOS are honoured; embeddings are tied.</summary>
public sealed class GptTests
{
    private static GptLanguageModel Model() { Tiny.Seed(); return new GptLanguageModel(Tiny.Gpt(dropout: 0.1)); }

    [Fact]
    public void Sampling_is_deterministic_under_a_seed()
    {
        using var gpt = Model();
        var prompt = Tiny.Ids(2, 3);
        var options = new GenerationOptions { MaxNewTokens = 8, Temperature = 1.5, TopK = 10 };
        var a = gpt.Generate(prompt, options, new Generator(42));
        var b = gpt.Generate(prompt, options, new Generator(42));
        Assert.Equal(new long[] { 2, 11 }, a.shape);
        Assert.True(Tensors.Same(a, b));
        Assert.True(Tensors.Same(a[TensorIndex.Colon, TensorIndex.Slice(0, 3)], prompt));
        Assert.True(gpt.training, "generation must restore the training flag");
    }

    [Fact]
    public void Greedy_equals_argmax_of_the_forward_pass_and_top_k_1_is_greedy()
    {
        using var gpt = Model();
        var prompt = Tiny.Ids(2, 3);
        var greedy = gpt.Generate(prompt, new GenerationOptions { MaxNewTokens = 6, Greedy = true });
        gpt.eval();
        for (int t = 3; t < 9; t++)
        {
            var next = gpt.forward(greedy.narrow(1, 0, t), null).select(1, t - 1).argmax(-1);
            Assert.True(Tensors.Same(next, greedy.select(1, t)), $"step {t} is not the argmax");
        }
        var topOne = gpt.Generate(prompt, new GenerationOptions { MaxNewTokens = 6, TopK = 1, Temperature = 0.7 }, new Generator(1));
        Assert.True(Tensors.Same(topOne, greedy));
    }

    [Fact]
    public void Generation_stops_at_eos_and_pads_finished_rows()
    {
        using var gpt = Model();
        var prompt = Tiny.Ids(1, 3);
        var greedy = gpt.Generate(prompt, new GenerationOptions { MaxNewTokens = 5, Greedy = true });
        long firstNew = greedy[0, 3].item<long>();
        var stopped = gpt.Generate(prompt, new GenerationOptions { MaxNewTokens = 5, Greedy = true, EosTokenId = firstNew });
        Assert.Equal(4, stopped.shape[1]);

        var two = cat([prompt, Tiny.Ids(1, 3)], 0);
        var rows = gpt.Generate(two, new GenerationOptions { MaxNewTokens = 5, Greedy = true, EosTokenId = firstNew });
        Assert.True(rows.shape[1] <= 8);
        Assert.True(rows[0, TensorIndex.Slice(4)].eq(Tiny.Gpt().PadTokenId).all().item<bool>());
    }

    [Fact]
    public void Generation_past_max_positions_crops_the_context()
    {
        using var gpt = Model();
        var result = gpt.Generate(Tiny.Ids(1, 14), new GenerationOptions { MaxNewTokens = 6 }, new Generator(3));
        Assert.Equal(20, result.shape[1]);
    }

    [Fact]
    public void Output_projection_is_the_token_embedding()
    {
        Tiny.Seed();
        using var gpt = new GptLanguageModel(Tiny.Gpt() with { VocabSize = 40 });   // V ≠ H so the table is identifiable by shape
        gpt.eval();
        var ids = Tiny.Ids(1, 4);
        var hidden = gpt.Backbone.forward(ids, null, null);
        var expected = hidden.matmul(gpt.Backbone.Embeddings.Token.weight!.t());
        Assert.True(gpt.forward(ids, null).allclose(expected, atol: 1e-6));
        Assert.Single(gpt.parameters(), p => p.dim() == 2 && p.shape[0] == 40);      // no separate output matrix
    }
}
