using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Engine;

/// <summary>
/// On the CPU the parameters' gradients are slices of the all-reduce buffer (<see cref="GradientBuffer.BindGradients"/>):
/// backward must accumulate into the buffer itself, a sum written into the buffer must be what the optimizer reads,
/// and a gradient that autograd (or anyone) replaced must still reach the buffer.
/// </summary>
public sealed class GradientBufferTests
{
    private static GptLanguageModel Model()
    {
        torch.manual_seed(11);
        return new GptLanguageModel(new GptConfig { VocabSize = 48, HiddenSize = 16, Layers = 2, Heads = 2, IntermediateSize = 32, MaxPositions = 8, Dropout = 0, AttentionDropout = 0 });
    }

    private static void Backward(GptLanguageModel model, int seed)
    {
        using var scope = NewDisposeScope();
        var g = new Random(seed);
        var ids = torch.tensor(Enumerable.Range(0, 16).Select(_ => (long)g.Next(48)).ToArray(), [2, 8]);
        LanguageModelLosses.CausalLm(model.forward(ids, null), ids).Sum.backward();
    }

    private static float[] Flat(IEnumerable<Tensor?> grads)
    {
        using var scope = NewDisposeScope();
        return grads.SelectMany(t => t is null ? [] : t.data<float>().ToArray()).ToArray();
    }

    [Fact]
    public void Backward_accumulates_into_the_buffer_and_the_parameters_read_it_back()
    {
        using var model = Model();
        var parameters = Trainer.TrainableParameters(model);

        // Reference: two micro-batches accumulated into gradients autograd allocates itself.
        Backward(model, 1);
        Backward(model, 2);
        var expected = Flat(parameters.Select(p => p.grad));
        foreach (var p in parameters) p.grad = null;

        using var buffer = new GradientBuffer(parameters);
        Assert.True(buffer.GradientsInPlace);
        buffer.BindGradients(() => throw new InvalidOperationException("a CPU buffer must not fall back to zero_grad"));
        Backward(model, 1);
        Backward(model, 2);
        // No packing: the buffer already holds the accumulated gradients, bit for bit.
        Assert.Equal(expected, buffer.Data.Take((int)buffer.ParameterCount).ToArray());

        buffer.Pack(lossSum: 3.5, nonFinite: false);
        Assert.Equal(expected, buffer.Data.Take((int)buffer.ParameterCount).ToArray());
        Assert.Equal(3.5, buffer.LossSum);

        // What an all-reduce writes into the buffer is what clipping and the optimizer see.
        for (int i = 0; i < buffer.ParameterCount; i++) buffer.Data[i] = i % 7;
        buffer.Unpack(1.0);
        Assert.Equal(Enumerable.Range(0, (int)buffer.ParameterCount).Select(i => (float)(i % 7)).ToArray(), Flat(parameters.Select(p => p.grad)));

        // The next step starts from zero, still in place.
        buffer.BindGradients(() => throw new InvalidOperationException("unexpected fallback"));
        Assert.All(buffer.Data, x => Assert.Equal(0f, x));
        Backward(model, 1);
        Backward(model, 2);
        Assert.Equal(expected, buffer.Data.Take((int)buffer.ParameterCount).ToArray());
    }

    [Fact]
    public void A_gradient_replaced_after_binding_is_copied_into_its_slot_and_bound_again()
    {
        using var model = Model();
        var parameters = Trainer.TrainableParameters(model);
        using var buffer = new GradientBuffer(parameters);
        buffer.BindGradients(() => { });
        Backward(model, 3);

        // Someone swaps the first parameter's gradient for a tensor of its own.
        var first = parameters[0];
        using (var replacement = torch.full(first.shape, 2.5f)) first.grad = replacement;
        buffer.PackGradients(0, parameters.Length);
        int n = (int)first.numel();
        Assert.All(buffer.Data.Take(n), x => Assert.Equal(2.5f, x));

        // Bound again: a sum written into the buffer reaches that parameter too.
        Array.Fill(buffer.Data, -1f, 0, n);
        buffer.Unpack(1.0);
        Assert.All(Flat([first.grad]), x => Assert.Equal(-1f, x));
    }
}
