using DistTrain.Api.V1;
using DistTrain.Cli.Views;

namespace DistTrain.Api.Tests.Views;

/// <summary>What the watch view keeps of a job's events, without a server: resumption, progress, the end.</summary>
public sealed class WatchModelTests
{
    private static JobReply Job() => new()
    {
        JobId = "j", Name = "n", State = State.Queued,
        Stages = { new StageStatus { Name = "lm", Kind = "pretrain", State = State.Queued, TotalSteps = 10 } },
    };

    private static JobEvent Progress(long seq, int step, double loss) => new()
    {
        Sequence = seq, Progress = new V1.Progress { Stage = "lm", Rank = 0, Step = step, TotalSteps = 10, Loss = loss, TokensPerSecond = 100 },
    };

    [Fact]
    public void A_resumed_stream_that_repeats_events_changes_nothing_and_steps_count_completed_steps()
    {
        var model = new WatchModel(Job());
        Assert.True(model.Apply(new JobEvent { Sequence = 1, StageChanged = new StageStatus { Name = "lm", Kind = "pretrain", State = State.Running, TotalSteps = 10 } }));
        Assert.True(model.Apply(Progress(2, step: 4, loss: 3.5)));
        // The server resumes after sequence 2, but a stream may repeat what was already applied.
        Assert.False(model.Apply(Progress(2, step: 4, loss: 9.9)));
        Assert.False(model.Apply(Progress(1, step: 0, loss: 9.9)));
        Assert.Equal(2, model.LastSequence);
        var rank = model.Rank("lm", 0)!;
        Assert.Equal(5, rank.Step);              // the 0-based step index 4 means five steps are done
        Assert.Equal(3.5, rank.Loss);
        Assert.Equal(5, model.Stages.Single().Step);
        Assert.Contains("step 5/10 loss 3.5000", rank.Describe());

        var finished = Job();
        finished.State = State.Succeeded;
        finished.Stages[0].State = State.Succeeded;
        finished.Stages[0].Step = 10;
        Assert.True(model.Apply(new JobEvent { Sequence = 3, Finished = finished }));
        Assert.Equal(State.Succeeded, model.StageState("lm"));
        Assert.Equal(10, model.Stages.Single().Step);
    }

    [Fact]
    public void Workers_attach_to_their_rank_line_and_only_changes_are_reported()
    {
        var model = new WatchModel(Job());
        var worker = new Worker { WorkerId = "h:1/cpu", Node = "akka.tcp://disttrain@h:1", Device = "cpu", JobId = "j", Stage = "lm", Rank = 0, Health = "up" };
        Assert.True(model.SetWorkers([worker]));
        Assert.False(model.SetWorkers([worker.Clone()]));
        Assert.StartsWith("h:1/cpu: waiting", model.Rank("lm", 0)!.Detail());
        model.Apply(Progress(1, step: 0, loss: 6.0));
        Assert.StartsWith("h:1/cpu: step 1/10", model.Rank("lm", 0)!.Detail());
        var lost = worker.Clone();
        lost.Health = "unreachable";
        Assert.True(model.SetWorkers([lost]));
        Assert.Contains("(unreachable)", model.Rank("lm", 0)!.Detail());
    }
}
