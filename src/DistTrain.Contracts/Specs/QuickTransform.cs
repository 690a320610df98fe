namespace DistTrain.Contracts.Specs;

/// <summary>The <c>--quick</c> smoke-run transform: same pipeline, same models, a few steps on a little data.</summary>
/// <remarks>
/// Pure (JobSpec → JobSpec) and validity-preserving: a spec that validates still validates after it, because
/// every number only shrinks and batch sizes stay divisible by micro-batches and every allowed worker count.
/// Models are left alone so checkpoints still chain from stage to stage and shape errors still surface.
/// </remarks>
public static class QuickTransform
{
    /// <summary>Optimiser steps per training stage in a quick run.</summary>
    public const int Steps = 20;

    /// <summary>Examples read per stage in a quick run.</summary>
    public const int MaxExamples = 64;

    /// <summary>Longest sequence in a quick run.</summary>
    public const int SeqLen = 64;

    /// <summary>Target global batch; rounded up to the smallest size every allowed worker count can split.</summary>
    public const int BatchSize = 8;

    /// <summary>Applies the smoke-run limits to every stage; the job name gets a <c>-quick</c> suffix (once) so runs are not confused.</summary>
    /// <remarks>
    /// Per stage: steps → min(steps, 20); warmup → min(warmup, steps / 10); eval_every and checkpoint_every → 0 (end
    /// only) when they exceed the new steps; max_examples → min(max_examples, 64); seq_len → min(seq_len, 64);
    /// batch_size → the largest multiple of micro_batches × lcm(worker range) that is ≤ max(8, that unit), never above
    /// the original; keep_checkpoints → 1. Workers, restarts and every model and objective setting are unchanged.
    /// </remarks>
    public static JobSpec Apply(JobSpec spec)
    {
        bool suffix = !spec.Name.EndsWith("-quick", StringComparison.Ordinal) && spec.Name.Length + 6 <= SpecLimits.MaxNameLength;
        var name = suffix ? spec.Name + "-quick" : spec.Name;
        return spec with { Name = name, Stages = spec.Stages.Select(Shrink).ToList() };
    }

    private static StageSpec Shrink(StageSpec s)
    {
        var t = s.Train;
        int steps = Math.Min(t.Steps, Steps);
        var train = t with
        {
            Steps = steps,
            Warmup = Math.Min(t.Warmup, steps / 10),
            EvalEvery = t.EvalEvery > steps ? 0 : t.EvalEvery,
            CheckpointEvery = t.CheckpointEvery > steps ? 0 : t.CheckpointEvery,
            BatchSize = SmallBatch(t, s.Distributed),
        };
        var data = s.Data with
        {
            SeqLen = Math.Min(s.Data.SeqLen, SeqLen),
            MaxExamples = Math.Min(s.Data.MaxExamples ?? int.MaxValue, MaxExamples),
        };
        return s with { Train = train, Data = data, Outputs = s.Outputs with { KeepCheckpoints = 1 } };
    }

    private static int SmallBatch(TrainSpec t, DistributedSpec d)
    {
        // Leave invalid settings as they are: validation reports them, and a transform must not hide them.
        if (t.MicroBatches < 1 || d.MinWorkers < 1 || d.MaxWorkers < d.MinWorkers || d.MaxWorkers > SpecLimits.MaxWorkers)
            return t.BatchSize;
        // Each micro-batch is split over the workers, so the unit is micro_batches × lcm(every allowed worker count).
        long workers = 1;
        for (int w = d.MinWorkers; w <= d.MaxWorkers && workers <= t.BatchSize; w++) workers = Lcm(workers, w);
        long unit = workers * t.MicroBatches;
        if (unit > t.BatchSize || t.BatchSize % unit != 0) return t.BatchSize;
        long target = Math.Max(BatchSize, unit) / unit * unit;
        return (int)Math.Min(target, t.BatchSize);
    }

    private static long Lcm(long a, long b) => a / Gcd(a, b) * b;

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
}
