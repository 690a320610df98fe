namespace DistTrain.Contracts.Specs;

/// <summary>What a stage inherits along its inputs: the task its model predicts, and the records it reads.</summary>
/// <remarks>One copy for the validator and the training code, so both agree on what a label or evaluate stage reads.</remarks>
public static class Lineage
{
    /// <summary>The classification task a stage's model predicts, following teachers through label and distill stages; null for language models.</summary>
    public static ClassificationTask? TaskOf(JobSpec job, StageSpec stage) => TaskOf(job, stage, []);

    private static ClassificationTask? TaskOf(JobSpec job, StageSpec s, HashSet<string> seen)
    {
        if (!seen.Add(s.Name)) return null; // cycles are reported by the validator
        if (s.Objective is ClassificationSpec c) return c.Task;
        if (s.Kind is StageKind.Distill or StageKind.Label)
        {
            if (s.Inputs.Teacher is { } t && job.Stage(t) is { } teacher && TaskOf(job, teacher, seen) is { } task) return task;
            if (s.Inputs.Labels is { } l && job.Stage(l) is { } labels) return TaskOf(job, labels, seen);
        }
        if (s.Kind == StageKind.Evaluate && (s.Inputs.Init ?? s.Inputs.Teacher) is { } m && job.Stage(m) is { } model) return TaskOf(job, model, seen);
        return null;
    }

    /// <summary>
    /// The records a stage reads from a file of the user's: its objective's schema; text for a label stage (the teacher
    /// labels running text, other fields are ignored); the evaluated model's for an evaluate stage; null for a distill
    /// stage, which reads its label stage's records.
    /// </summary>
    public static RecordSchema? SchemaOf(JobSpec job, StageSpec stage) => stage.Kind switch
    {
        StageKind.Distill => null,
        StageKind.Label => RecordSchema.Text,
        StageKind.Evaluate => TaskOf(job, stage)?.Schema() ?? RecordSchema.Text,
        _ when stage.Objective is { } o => ObjectiveDescriptors.Of(o.Kind).Schema(o),
        _ => null,
    };
}
