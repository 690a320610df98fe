using DistTrain.Cluster.Worker;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Tests.Worker;

/// <summary>When a rank's step reports leave for the coordinator: one message a window, not one a step.</summary>
public sealed class StepReportBatchTests
{
    private static StepCompleted Step(int step, double seconds = 0.13) =>
        new("j", "lm", 1, 0, step, 1, 1, 1e-3, 100, seconds, 0.01, 0, null, EndedTicks: 1000 + step);

    [Fact]
    public void Fast_steps_leave_together_at_the_end_of_the_window_in_step_order()
    {
        var now = new DateTime(2026, 12, 5, 0, 0, 0, DateTimeKind.Utc);
        var batch = new StepReportBatch(() => now);
        for (int step = 0; step < 9; step++)
        {
            now += TimeSpan.FromMilliseconds(130);
            Assert.Null(batch.Add(Step(step), windowEnd: false));
        }
        var sent = batch.Add(Step(9), windowEnd: true);
        Assert.Equal(Enumerable.Range(0, 10), sent!.Steps.Select(s => s.Step));
        Assert.Equal(0, batch.Pending);
        Assert.Null(batch.Flush());
    }

    [Fact]
    public void A_report_waits_at_most_the_delay_and_a_batch_holds_at_most_the_count()
    {
        var now = new DateTime(2026, 12, 5, 0, 0, 0, DateTimeKind.Utc);
        var batch = new StepReportBatch(() => now);
        // 0.8 s steps: the first report would wait 1.6 s for the third step's end, then 2.4 s for the fourth's; it leaves with the third.
        Assert.Null(batch.Add(Step(0, 0.8), windowEnd: false));
        now += TimeSpan.FromSeconds(0.8);
        Assert.Null(batch.Add(Step(1, 0.8), windowEnd: false));
        now += TimeSpan.FromSeconds(0.8);
        Assert.Equal([0, 1, 2], batch.Add(Step(2, 0.8), windowEnd: false)!.Steps.Select(s => s.Step));

        // Steps slower than the delay leave one by one, as each ends: none waits for the next step.
        foreach (int step in new[] { 3, 4 })
        {
            now += TimeSpan.FromSeconds(90);
            Assert.Equal([step], batch.Add(Step(step, 90), windowEnd: false)!.Steps.Select(s => s.Step));
        }

        // Steps faster than the clock's resolution still leave in bounded messages.
        var sizes = Enumerable.Range(0, 3 * StepReportBatch.MaxCount).Select(i => batch.Add(Step(i, 0), windowEnd: false)?.Steps.Length)
            .Where(n => n is not null).ToList();
        Assert.Equal([StepReportBatch.MaxCount, StepReportBatch.MaxCount, StepReportBatch.MaxCount], sizes);
    }

    [Fact]
    public void What_is_pending_when_a_step_fails_is_flushed_once()
    {
        var batch = new StepReportBatch(() => DateTime.UnixEpoch);
        batch.Add(Step(0), windowEnd: false);
        batch.Add(Step(1), windowEnd: false);
        Assert.Equal([0, 1], batch.Flush()!.Steps.Select(s => s.Step));
        Assert.Null(batch.Flush());
    }
}
