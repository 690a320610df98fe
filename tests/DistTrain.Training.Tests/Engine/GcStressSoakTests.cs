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
/// Training while the GC runs as often as it can: a side thread loops <c>GC.Collect(1); GC.WaitForPendingFinalizers()</c>
/// for the whole run, so any scalar or tensor operand that nothing keeps alive is finalized while libtorch may still
/// read it. The run must raise no native error and end with weights bit-identical to the same run without the stress.
/// </summary>
/// <remarks>
/// The companion of <see cref="NativeTemporariesTests"/>, which finds such operands in the source; this one checks the
/// fixed paths at run time. A tiny GPT through the real causal-LM objective (padding, attention mask, ignore-index
/// labels, loss normalisation) and the real trainer (AdamW, clipping, schedule).
/// <para>
/// Why young-generation collections and a ballast: the operands at risk are temporaries made just before a native call,
/// so they are in generation 0 or 1, and a generation-1 collection finalizes them exactly as a full one does. A full
/// collection instead costs time in proportion to everything alive in the process: after the other tests of this
/// assembly (the Brown corpus in <c>DataCatalog.Shared</c>, Roslyn's symbols) that is ~200 MB in 4.4 million objects,
/// a forced full collection took over 100 ms, the training thread waits out every one of them each time it returns
/// from native code, and the soak slowed from ~360 to ~13 steps/s: the "hang" of 2026-12-04 (docs/reliability.md). The
/// ballast (a few million live old objects) puts that condition into every run of this test, wherever it is ordered.
/// Collecting generation 1 also collects far more often than full collections did, which is how this test found the
/// intermediate tensor freed under <c>Batching.AttentionMask</c>'s <c>to</c> (a SIGSEGV in <c>THSTensor_to_type</c>).
/// </para>
/// </remarks>
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

    private sealed record Run(float[] Weights, int Errors, long Collections, double FirstLoss, double LastLoss, TimeSpan Time, TimeSpan Paused);

    /// <summary>Old, live objects standing in for what a long-lived process holds: every full collection must mark them.</summary>
    private static object[] Ballast(int count)
    {
        var ballast = new object[count];
        for (int i = 0; i < count; i++) ballast[i] = new int[1];
        GC.Collect();
        GC.Collect();   // twice: the ballast is now in generation 2, where the soak's collections do not trace it
        return ballast;
    }

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
                GC.Collect(1, GCCollectionMode.Forced, blocking: true);
                GC.WaitForPendingFinalizers();
                collections++;
            }
        }) { IsBackground = true };
        if (stress) collector.Start();
        int errors = 0;
        double first = double.NaN, last = double.NaN;
        var paused = GC.GetTotalPauseDuration();
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
        var time = clock.Elapsed;
        paused = GC.GetTotalPauseDuration() - paused;
        float[] weights = [.. model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray())];
        return new Run(weights, errors, collections, first, last, time, paused);
    }

    [Fact]
    public void Two_thousand_steps_under_constant_collection_end_bit_identical_to_a_quiet_run()
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);   // one kernel thread: the two runs then add in the same order
        var ballast = Ballast(3_000_000);
        Run quiet, stressed;
        try
        {
            quiet = Train(stress: false);
            stressed = Train(stress: true);
        }
        finally { torch.set_num_threads(threads); }
        GC.KeepAlive(ballast);
        output.WriteLine($"quiet {quiet.Time.TotalSeconds:F1} s, stressed {stressed.Time.TotalSeconds:F1} s with {stressed.Collections} " +
            $"collections (runtime paused {stressed.Paused.TotalSeconds:F1} s, heap {GC.GetGCMemoryInfo().HeapSizeBytes / 1e6:F0} MB); " +
            $"loss {quiet.FirstLoss:F3} → {quiet.LastLoss:F3}; {quiet.Weights.Length} weights");
        Assert.Equal(0, quiet.Errors);
        Assert.True(stressed.Errors == 0, $"{stressed.Errors} native errors under stress; the first: {FirstError}");
        // At least one collection (with its finalizers) per four steps, even on a loaded machine; measured 2,300-4,000 (full ones).
        Assert.True(stressed.Collections >= Steps / 4, $"only {stressed.Collections} collections during {Steps} steps");
        Assert.True(quiet.LastLoss < quiet.FirstLoss * 0.7, $"the model did not learn: {quiet.FirstLoss} → {quiet.LastLoss}");
        Assert.All(quiet.Weights, w => Assert.True(float.IsFinite(w)));
        Assert.Equal(quiet.Weights.Length, stressed.Weights.Length);
        int differing = quiet.Weights.Zip(stressed.Weights).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
        Assert.Equal(0, differing);
    }
}
