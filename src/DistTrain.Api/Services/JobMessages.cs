using DistTrain.Cluster.Jobs;
using Google.Protobuf.WellKnownTypes;
using V1 = DistTrain.Api.V1;

namespace DistTrain.Api.Services;

/// <summary>Domain records of <see cref="IJobService"/> to wire messages and back; the one place the two meet.</summary>
public static class JobMessages
{
    public static V1.State ToWire(this JobState s) => s switch
    {
        JobState.Queued => V1.State.Queued,
        JobState.Running => V1.State.Running,
        JobState.Succeeded => V1.State.Succeeded,
        JobState.Failed => V1.State.Failed,
        JobState.Cancelled => V1.State.Cancelled,
        _ => V1.State.Unspecified,
    };

    /// <returns>null for <see cref="V1.State.Unspecified"/> (no filter).</returns>
    public static JobState? FromWire(V1.State s) => s switch
    {
        V1.State.Queued => JobState.Queued,
        V1.State.Running => JobState.Running,
        V1.State.Succeeded => JobState.Succeeded,
        V1.State.Failed => JobState.Failed,
        V1.State.Cancelled => JobState.Cancelled,
        V1.State.Unspecified => null,
        _ => throw new ArgumentOutOfRangeException(nameof(s), $"unknown state {(int)s}"),
    };

    public static V1.JobReply ToWire(this JobView j)
    {
        var reply = new V1.JobReply
        {
            JobId = j.JobId, Name = j.Name, Priority = j.Priority, State = j.State.ToWire(),
            Submitted = Timestamp.FromDateTimeOffset(j.Submitted), Error = j.Error ?? "",
        };
        reply.Stages.AddRange(j.Stages.Select(ToWire));
        return reply;
    }

    public static V1.StageStatus ToWire(this StageView s)
    {
        var stage = new V1.StageStatus { Name = s.Name, Kind = s.Kind, State = s.State.ToWire(), Step = s.Step, TotalSteps = s.TotalSteps, Error = s.Error ?? "" };
        foreach (var (k, v) in s.Metrics) stage.Metrics[k] = v;
        return stage;
    }

    public static V1.JobEvent ToWire(this JobEvent e)
    {
        var wire = new V1.JobEvent { Sequence = e.Sequence, Time = Timestamp.FromDateTimeOffset(e.Time) };
        switch (e.Body)
        {
            case StageChanged c: wire.StageChanged = c.Stage.ToWire(); break;
            case StageProgress p:
                wire.Progress = new V1.Progress { Stage = p.Stage, Rank = p.Rank, Step = p.Step, TotalSteps = p.TotalSteps, Loss = p.Loss, TokensPerSecond = p.TokensPerSecond };
                break;
            case StageEvaluated v:
                wire.Evaluation = new V1.Evaluation { Stage = v.Stage, Step = v.Step };
                foreach (var (k, m) in v.Metrics) wire.Evaluation.Metrics[k] = m;
                break;
            case StageCheckpointSaved c: wire.Checkpoint = new V1.Checkpoint { Stage = c.Stage, Step = c.Step, Path = c.Path }; break;
            case JobError err: wire.Error = err.Message; break;
            case JobFinished f: wire.Finished = f.Job.ToWire(); break;
            default: throw new ArgumentOutOfRangeException(nameof(e), $"unknown job event {e.Body.GetType().Name}");
        }
        return wire;
    }

    public static V1.Worker ToWire(this WorkerView w) => new()
    {
        WorkerId = w.WorkerId, Node = w.Node, Device = w.Device, JobId = w.JobId ?? "", Stage = w.Stage ?? "", Rank = w.Rank ?? -1, Health = w.Health,
    };
}
