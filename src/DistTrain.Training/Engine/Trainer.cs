using System.Diagnostics;
using DistTrain.Models;
using DistTrain.Training.Optimization;
using DistTrain.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Engine;

/// <summary>Optimizer settings of one stage.</summary>
/// <param name="BucketBytes">Gradient bucket size for overlapping the all-reduce with backward (<see cref="GradientBuckets"/>); 0 reduces once after backward.</param>
public sealed record TrainerOptions(LearningRateSchedule Schedule, double WeightDecay = 0.01, double ClipNorm = 1.0,
    double Beta1 = 0.9, double Beta2 = 0.98, double Eps = 1e-8, long Seed = 1234, long BucketBytes = 0);

/// <summary>
/// The data-parallel training step, the same in a single process and on the cluster: all-reduce the target
/// counts, forward/backward each micro-batch's loss SUM divided by the GLOBAL count, all-reduce the gradients
/// (with the loss and a non-finite flag), clip, AdamW. Normalising by the global count is what makes
/// N ranks × M micro-batches equal one big batch, and the same gradient everywhere keeps replicas identical.
/// With several ranks and <see cref="TrainerOptions.BucketBytes"/> &gt; 0, the last micro-batch's backward runs block
/// by block (<see cref="BackwardCuts"/>) and each bucket of final gradients is reduced on a side thread meanwhile;
/// the sums are the same elements either way.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly nn.Module _model;
    private readonly TrainerOptions _options;
    private readonly IGradientReducer _reducer;
    private readonly Parameter[] _params;
    private readonly GradientBuffer? _buffer;   // only when there are other ranks to reduce with
    private readonly GradientBuckets? _buckets;
    private readonly BucketSender? _sender;     // only when there are other ranks: the counts, and buckets that overlap backward

    public Trainer(nn.Module model, TrainerOptions options, IGradientReducer reducer)
    {
        _model = model;
        _options = options;
        _reducer = reducer;
        _params = TrainableParameters(model);
        if (reducer.WorldSize > 1)
        {
            _buckets = GradientBuckets.Plan(model, _params, options.BucketBytes);
            _buffer = new GradientBuffer(_buckets.Parameters);
            _sender = new BucketSender(reducer);
        }
        ParameterCount = _params.Sum(p => p.numel());
        Optimizer = CreateAdamW(_params, options);
    }

    public OptimizerHelper Optimizer { get; }
    public nn.Module Model => _model;
    public long ParameterCount { get; }

    /// <summary>
    /// Runs one optimizer step over this rank's micro-batches (they are disposed here). Two collectives:
    /// the per-part target counts (tiny, exact), then the gradients with the loss sum and a non-finite flag. With
    /// other ranks the counts travel on the side thread while the first micro-batch's forward runs (the loss needs
    /// them only to be normalised), so their round trip is not another pause of every step.
    /// </summary>
    public StepReport Step(int step, IReadOnlyList<IMicroBatch> microBatches, double dataSeconds = 0)
    {
        var clock = Stopwatch.StartNew();
        Overlap? overlap = null;
        try
        {
            _model.train();
            if (_buffer is not null) _buffer.BindGradients(Optimizer.zero_grad);
            else Optimizer.zero_grad();
            // Dropout draws from the global generator; seeding it from (seed, step, rank) makes a resumed run
            // replay exactly the same masks without saving generator state.
            torch.random.manual_seed((long)(SeededRandom.For((ulong)_options.Seed, (ulong)step, stream: (ulong)_reducer.Rank + 1).NextUInt64() >> 1));

            var reduceClock = new Stopwatch();
            var counts = LocalCounts(microBatches);
            double countsSeconds = 0;
            long[]? globalCounts = null;
            _sender?.Send(counts, 0, counts.Length, exactTail: counts.Length);
            long[] GlobalCounts()
            {
                if (globalCounts is not null) return globalCounts;
                reduceClock.Start();
                if (_sender is not null) countsSeconds = _sender.WaitAll();
                else
                {
                    var reduce = Stopwatch.StartNew();
                    _reducer.AllReduceSum(counts, counts.Length, exactTail: counts.Length);
                    countsSeconds = reduce.Elapsed.TotalSeconds;
                }
                reduceClock.Stop();
                // fp32 holds integers exactly up to 2^24; a step with more targets than that would need a wider count.
                if (counts.Any(c => c >= 1 << 24)) throw new InvalidOperationException("more than 2^24 targets in one step");
                return globalCounts = counts.Select(c => (long)c).ToArray();
            }
            double lossSum = 0;
            overlap = _buckets is { Overlaps: true } ? new Overlap(this) : null;
            for (int m = 0; m < microBatches.Count; m++)
            {
                using var scope = NewDisposeScope();
                bool last = m == microBatches.Count - 1;
                overlap?.Arm(last);
                try
                {
                    var terms = microBatches[m].Loss();
                    CheckCounts(terms, microBatches[m].PartCounts);
                    if (GlobalCounts().Any(c => c > 0))
                    {
                        var loss = terms.Normalize(GlobalCounts());   // Σ wᵢ·Sumᵢ / Gᵢ: this micro-batch's share of the global mean
                        loss.backward();                            // with cuts armed: down to the last block's output
                        lossSum += loss.detach().cpu().item<float>();
                        if (last) overlap?.BackwardBlocks();
                    }
                }
                finally { overlap?.Disarm(); }
            }
            if (GlobalCounts().All(c => c == 0))
                throw new InvalidOperationException($"step {step}: no targets in the global batch (empty or fully masked data)");

            bool nonFinite = !double.IsFinite(lossSum);
            double commSeconds = 0;
            if (_buffer is not null)
            {
                // Gradients are already normalised: the reduced sum is the global batch's gradient.
                reduceClock.Start();
                if (overlap is not null) commSeconds = overlap.Finish(lossSum, nonFinite);
                else
                {
                    var reduce = Stopwatch.StartNew();
                    _buffer.Pack(lossSum, nonFinite);
                    _reducer.AllReduceSum(_buffer.Data, _buffer.Length, GradientBuffer.Trailer);
                    commSeconds = reduce.Elapsed.TotalSeconds;
                }
                reduceClock.Stop();
                (lossSum, nonFinite) = (_buffer.LossSum, _buffer.AnyNonFinite);
                if (!nonFinite) _buffer.Unpack(1.0);
            }
            if (nonFinite) { Optimizer.zero_grad(); throw new NonFiniteLossException(step, "the loss"); }
            // A clip of 0 disables clipping; the norm is still measured (for logging and the NaN check).
            double gradNorm = nn.utils.clip_grad_norm_(_params, _options.ClipNorm > 0 ? _options.ClipNorm : float.MaxValue);
            if (!double.IsFinite(gradNorm)) { Optimizer.zero_grad(); throw new NonFiniteLossException(step, "the gradient norm"); }

            double lr = _options.Schedule.At(step);
            foreach (var group in Optimizer.ParamGroups) group.LearningRate = lr;
            Optimizer.step();
            return new StepReport(step, lossSum, GlobalCounts()[0], gradNorm, lr, clock.Elapsed.TotalSeconds, reduceClock.Elapsed.TotalSeconds, dataSeconds)
            {
                CommSeconds = commSeconds + countsSeconds,
            };
        }
        finally
        {
            // After a failed step: let collectives already queued finish (or fail), so the next one starts alone.
            if (_sender is not null)
                try { _sender.WaitAll(); }
                catch (Exception) { /* the step has already failed with its own error */ }
            foreach (var micro in microBatches) micro.Dispose();
        }
    }

    /// <summary>This rank's target counts per loss part, summed over its micro-batches (fp32: they ride an all-reduce).</summary>
    private static float[] LocalCounts(IReadOnlyList<IMicroBatch> microBatches)
    {
        int parts = microBatches.Count > 0 ? microBatches[0].PartCounts.Count : 1;
        var counts = new float[parts];
        foreach (var micro in microBatches)
        {
            if (micro.PartCounts.Count != parts) throw new InvalidOperationException("micro-batches disagree on the number of loss parts");
            for (int i = 0; i < parts; i++) counts[i] += micro.PartCounts[i];
        }
        return counts;
    }

    private static void CheckCounts(LossTerms terms, IReadOnlyList<long> declared)
    {
        var actual = terms.Parts.Count == 0 ? [terms.Count] : terms.Parts.Select(p => p.Terms.Count).ToArray();
        if (!actual.SequenceEqual(declared))
            throw new InvalidOperationException($"micro-batch declared target counts [{string.Join(", ", declared)}] but its loss counted [{string.Join(", ", actual)}]");
    }

    /// <summary>AdamW without weight decay on biases and LayerNorm weights (1-D parameters), as BERT and GPT-2 train.</summary>
    private static OptimizerHelper CreateAdamW(IEnumerable<Parameter> parameters, TrainerOptions o)
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var p in parameters)
            (p.dim() >= 2 ? decay : noDecay).Add(p);
        var groups = new List<AdamW.ParamGroup>
        {
            new(decay, new AdamW.Options { weight_decay = o.WeightDecay }),
            new(noDecay, new AdamW.Options { weight_decay = 0 }),
        };
        return new KeptAliveAdamW(groups, o.Schedule.At(0), o.Beta1, o.Beta2, o.Eps, o.WeightDecay);   // optim.AdamW, without its temporaries
    }

    /// <summary>
    /// Trainable parameters in registration order, each once: a tied or shared parameter (GPT's embeddings,
    /// ALBERT's layers) must be reduced and stepped once, not once per place it is used.
    /// </summary>
    public static Parameter[] TrainableParameters(nn.Module model)
    {
        var seen = new HashSet<IntPtr>();
        return model.parameters().Where(p => p.requires_grad && seen.Add(p.Handle)).ToArray();
    }

    /// <summary>
    /// One step's overlapped reduction: cuts armed on the last micro-batch's forward, its backward run segment by
    /// segment (last block first), and each bucket sent as soon as all its blocks are through backward.
    /// </summary>
    private sealed class Overlap(Trainer trainer)
    {
        private readonly GradientBuckets _plan = trainer._buckets!;
        private readonly GradientBuffer _buffer = trainer._buffer!;
        private readonly BucketSender _sender = trainer._sender!;
        private readonly BackwardCuts _cuts = new();
        private readonly HashSet<TransformerBlock> _done = [];
        private int _sent;

        public void Arm(bool last)
        {
            _cuts.Clear();
            foreach (var t in _plan.CutTransformers) t.Cuts = last ? _cuts : null;
        }

        public void Disarm()
        {
            foreach (var t in _plan.CutTransformers) t.Cuts = null;
            _cuts.Clear();   // the cut tensors belong to the micro-batch's dispose scope
        }

        /// <summary>Backward through each cut, latest first; a block is final once its earliest cut is through (DPO runs a block twice).</summary>
        public void BackwardBlocks()
        {
            var cuts = _cuts.Recorded;
            var earliest = new Dictionary<TransformerBlock, int>();
            for (int i = cuts.Count - 1; i >= 0; i--) earliest[cuts[i].Block] = i;
            for (int i = cuts.Count - 1; i >= 0; i--)
            {
                cuts[i].Backward();
                if (earliest[cuts[i].Block] != i) continue;
                _done.Add(cuts[i].Block);
                SendReady(finishing: false);
            }
        }

        /// <summary>Sends what is left (the final bucket carries the loss and flag), waits for every bucket; returns the seconds spent reducing.</summary>
        public double Finish(double lossSum, bool nonFinite)
        {
            _buffer.PackTrailer(lossSum, nonFinite);
            SendReady(finishing: true);   // every bucket: also those of blocks this rank never ran (no forward, or not in this objective)
            return _sender.WaitAll();
        }

        private void SendReady(bool finishing)
        {
            while (_sent < _plan.Buckets.Count)
            {
                var bucket = _plan.Buckets[_sent];
                bool final = _sent == _plan.Buckets.Count - 1;
                if (!finishing && (final || !bucket.Blocks.All(_done.Contains))) return;
                _buffer.PackGradients(bucket.First, bucket.End);
                int offset = (int)_buffer.Offset(bucket.First);
                int end = final ? _buffer.Length : (int)_buffer.Offset(bucket.End);
                _sender.Send(_buffer.Data, offset, end - offset, final ? GradientBuffer.Trailer : 0);
                _sent++;
            }
        }
    }

    public void Dispose()
    {
        _sender?.Dispose();
        _buffer?.Dispose();
        Optimizer.Dispose();
    }
}
