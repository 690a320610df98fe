using DistTrain.Execution;
using System.Diagnostics;
using System.Runtime.InteropServices;
using DistTrain.Data.Datasets;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Objectives;
using DistTrain.Training.Optimization;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Engine;

/// <summary>
/// Training while the GC runs as often as it can: a side thread loops <c>GC.Collect(); GC.WaitForPendingFinalizers()</c>
/// for the whole run, so any scalar or tensor operand that nothing keeps alive is finalized while libtorch may still
/// read it. The run must raise no native error and end with weights bit-identical to the same run without the stress.
/// </summary>
/// <remarks>
/// The companion of <see cref="NativeTemporariesTests"/>, which finds such operands in the source; this one checks the
/// fixed paths at run time. A tiny GPT through the real causal-LM objective (padding, attention mask, ignore-index
/// labels, loss normalisation) and the real trainer (AdamW, clipping, schedule).
/// </remarks>
[Collection(SoakFirst.Name)]
public sealed class GcStressSoakTests(ITestOutputHelper output)
{
    private const int Steps = 2000;

    /// <summary>Fixed synthetic sequences of ids 1…63, some shorter than 16 so batches carry padding.</summary>
    private sealed class Sequences : IIndexedDataset<LmExample>
    {
        private readonly LmExample[] _rows = Enumerable.Range(0, 64).Select(i =>
        {
            var rng = new Random(100 + i);
            int length = 8 + i % 9;   // 8…16
            var ids = new int[16];
            for (int j = 0; j < length; j++) ids[j] = 1 + (j == 0 ? i % 63 : (ids[j - 1] * 7 + rng.Next(3)) % 63);
            return new LmExample(ids, length);
        }).ToArray();
        public int Count => _rows.Length;
        public LmExample this[int index] => _rows[index];
    }

    private static string? FirstError;

    private sealed record Run(float[] Weights, int Errors, long Collections, double FirstLoss, double LastLoss, TimeSpan Time);

    private static Run Train(bool stress)
    {
        torch.manual_seed(11);
        var model = new GptLanguageModel(new GptConfig { VocabSize = 64, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16, Dropout = 0 });
        var data = new Sequences();
        using var objective = new CausalLmObjective(model, CPU, data, data);
        using var trainer = new Trainer(model, new TrainerOptions(new LearningRateSchedule(3e-3, 20, Steps)), LocalReducer.Instance);
        using var stop = new CancellationTokenSource();
        long collections = 0;
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                collections++;
            }
        }) { IsBackground = true };
        if (stress) collector.Start();
        int errors = 0;
        double first = double.NaN, last = double.NaN;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int step = 0; step < Steps; step++)
            {
                int[] indices = [.. Enumerable.Range(0, 4).Select(k => (step * 4 + k) % data.Count)];
                using var batch = objective.TrainBatch(indices, epoch: step * 4 / data.Count);
                try
                {
                    double loss = trainer.Step(step, [batch]).Loss;
                    if (step == 0) first = loss;
                    last = loss;
                }
                catch (ExternalException e)   // what libtorch errors surface as
                {
                    if (errors++ == 0) FirstError = $"step {step}: {e.Message}\n{e.StackTrace}";
                }
            }
        }
        finally
        {
            stop.Cancel();
            if (stress) collector.Join();
        }
        float[] weights = [.. model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray())];
        return new Run(weights, errors, collections, first, last, clock.Elapsed);
    }

    // Skipped 2026-12-04: in one CI run the test host crashed at the start of the Training tests, with this soak first;
    // in another the soak hung after 86 other tests (docs/reliability.md, "Open"). The race it exposes is not fixed.
    [Fact(Skip = "open: the test host hung or crashed under forced collections on 2026-12-04 (docs/reliability.md)")]
    public void Two_thousand_steps_under_constant_collection_end_bit_identical_to_a_quiet_run()
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);   // one kernel thread: the two runs then add in the same order
        Run quiet, stressed;
        try
        {
            quiet = Train(stress: false);
            stressed = Train(stress: true);
        }
        finally { torch.set_num_threads(threads); }
        output.WriteLine($"quiet {quiet.Time.TotalSeconds:F1} s, stressed {stressed.Time.TotalSeconds:F1} s with {stressed.Collections} " +
            $"full collections; loss {quiet.FirstLoss:F3} → {quiet.LastLoss:F3}; {quiet.Weights.Length} weights");
        Assert.Equal(0, quiet.Errors);
        Assert.True(stressed.Errors == 0, $"{stressed.Errors} native errors under stress; the first: {FirstError}");
        // At least one full collection (with its finalizers) per four steps, even on a loaded machine; measured 2,300-3,700.
        Assert.True(stressed.Collections >= Steps / 4, $"only {stressed.Collections} collections during {Steps} steps");
        Assert.True(quiet.LastLoss < quiet.FirstLoss * 0.7, $"the model did not learn: {quiet.FirstLoss} → {quiet.LastLoss}");
        Assert.All(quiet.Weights, w => Assert.True(float.IsFinite(w)));
        Assert.Equal(quiet.Weights.Length, stressed.Weights.Length);
        int differing = quiet.Weights.Zip(stressed.Weights).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
        Assert.Equal(0, differing);
    }
}
