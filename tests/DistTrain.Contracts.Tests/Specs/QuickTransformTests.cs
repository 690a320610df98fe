using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>The --quick smoke transform shrinks work and keeps the spec valid.</summary>
public sealed class QuickTransformTests
{
    [Theory]
    [InlineData("brown-pipeline.yaml")]
    [InlineData("assistant-pipeline.yaml")]
    public void Quick_examples_stay_valid_and_small(string file)
    {
        var full = JobSpecs.LoadFile(SpecText.ExamplePath(file)).Spec!;
        var quick = JobSpecs.LoadFile(SpecText.ExamplePath(file), quick: true).Spec!;
        Assert.Empty(SpecValidator.Validate(quick));
        Assert.EndsWith("-quick", quick.Name);
        Assert.Equal(full.Stages.Select(s => s.Name), quick.Stages.Select(s => s.Name));
        foreach (var (f, q) in full.Stages.Zip(quick.Stages))
        {
            Assert.Equal(f.Model, q.Model);
            Assert.True(q.Train.Steps <= QuickTransform.Steps);
            Assert.True(q.Data.MaxExamples <= QuickTransform.MaxExamples);
            Assert.True(q.Data.SeqLen <= QuickTransform.SeqLen);
            Assert.True(q.Train.BatchSize <= f.Train.BatchSize);
        }
    }

    [Fact]
    public void Batch_shrinks_to_what_every_worker_count_can_split()
    {
        var spec = JobSpecs.Load(SpecText.Job("  - {name: p, kind: pretrain, train: {batch_size: 48, micro_batches: 2, steps: 500, warmup: 100, eval_every: 50}, distributed: {workers: {min: 2, max: 3}}}\n")).Spec!;
        var t = QuickTransform.Apply(spec).Stages[0].Train;
        Assert.Equal(12, t.BatchSize); // 2 micro-batches × lcm(2, 3) = 12, the smallest legal batch
        Assert.Equal((20, 2, 0), (t.Steps, t.Warmup, t.EvalEvery));
    }

    [Fact]
    public void Quick_is_pure_and_idempotent()
    {
        var spec = JobSpecs.LoadFile(SpecText.ExamplePath("brown-pipeline.yaml")).Spec!;
        var before = spec.Stages.ToList();
        var once = QuickTransform.Apply(spec);
        Assert.Equal(before, spec.Stages); // input untouched
        var twice = QuickTransform.Apply(once);
        Assert.Equal(once.Name, twice.Name);
        Assert.Equal(once.Stages, twice.Stages);
    }
}
