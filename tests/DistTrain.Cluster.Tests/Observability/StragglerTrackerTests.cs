using DistTrain.Cluster.Observability;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Observability;

/// <summary>Straggler attribution by hand-computed medians; no actor system.</summary>
public sealed class StragglerTrackerTests
{
    private static StepCompleted Step(int rank, int step, double stepSeconds, double reduceSeconds, int generation = 1, string stage = "lm") =>
        new("job", stage, generation, rank, step, 2.0, 1.0, 1e-3, 100, stepSeconds, reduceSeconds, 0.01, null);

    [Fact]
    public void Gaps_are_busy_time_minus_the_median_once_every_rank_reported()
    {
        var t = new StragglerTracker();
        t.OnGeneration("job", "lm", 1, ["a:1", "b:1", "c:1"]);
        // Lock step: every rank's wall time is 1.0 s; rank 2 worked 0.9 s, the others 0.4 s and waited in the all-reduce.
        Assert.Null(t.OnStep(Step(0, 7, 1.0, 0.6)));
        Assert.Null(t.OnStep(Step(2, 7, 1.0, 0.1)));
        var gaps = t.OnStep(Step(1, 7, 1.0, 0.6));
        Assert.NotNull(gaps);
        Assert.Equal(7, gaps.Step);
        Assert.Equal(0.4, gaps.MedianBusySeconds, 12);
        Assert.Equal([0.0, 0.0, 0.5], gaps.Gaps.Select(g => Math.Round(g.GapSeconds, 12)));
        Assert.Equal(["a:1", "b:1", "c:1"], gaps.Gaps.Select(g => g.Node));
    }

    [Fact]
    public void An_even_number_of_ranks_takes_the_mean_of_the_middle_two()
    {
        Assert.Equal(2.5, StragglerTracker.Median([4, 1, 2, 3]));
        Assert.Equal(3, StragglerTracker.Median([5, 3, 1]));
        var t = new StragglerTracker();
        t.OnGeneration("job", "lm", 1, ["a:1", "b:1"]);
        t.OnStep(Step(0, 0, 1.0, 0.5));
        var gaps = t.OnStep(Step(1, 0, 1.0, 0.1))!;
        Assert.Equal([-0.2, 0.2], gaps.Gaps.Select(g => Math.Round(g.GapSeconds, 12)));
    }

    [Fact]
    public void Reports_of_another_generation_or_an_unknown_stage_are_ignored_and_a_new_group_starts_afresh()
    {
        var t = new StragglerTracker();
        Assert.Null(t.OnStep(Step(0, 0, 1, 0)));                  // no group known
        t.OnGeneration("job", "lm", 2, ["a:1", "b:1"]);
        Assert.Null(t.OnStep(Step(0, 3, 1, 0, generation: 1)));  // stale generation
        Assert.Null(t.OnStep(Step(5, 3, 1, 0, generation: 2)));  // no such rank
        Assert.Null(t.OnStep(Step(0, 3, 1, 0, generation: 2)));
        t.OnGeneration("job", "lm", 3, ["b:1"]);                  // re-formed with one rank: the half-reported step is gone
        var gaps = t.OnStep(Step(0, 3, 2, 0.5, generation: 3))!;
        Assert.Equal(1.5, gaps.MedianBusySeconds, 12);
        Assert.Equal(0, gaps.Gaps.Single().GapSeconds, 12);
        t.OnStageFinished("job", "lm");
        Assert.Null(t.OnStep(Step(0, 4, 1, 0, generation: 3)));
    }

    [Fact]
    public void Busy_time_never_goes_negative()
    {
        Assert.Equal(0, StragglerTracker.BusySeconds(Step(0, 0, 0.5, 0.6)));
    }
}
