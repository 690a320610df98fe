namespace DistTrain.Contracts.Specs;

/// <summary>What a stage does. A closed set: the scheduler and the runners switch on it exhaustively.</summary>
public enum StageKind
{
    /// <summary>Self-supervised training from scratch (mlm, clm, rtd, plm or span_corruption).</summary>
    Pretrain,
    /// <summary>Supervised classification from an initial checkpoint.</summary>
    Finetune,
    /// <summary>Supervised fine-tuning of a decoder on prompt/response pairs.</summary>
    Sft,
    /// <summary>Train a scalar reward model on preference pairs.</summary>
    Reward,
    /// <summary>Direct preference optimisation against a frozen reference model.</summary>
    Dpo,
    /// <summary>Run a teacher over a corpus and store its predictions as a labelled data set.</summary>
    Label,
    /// <summary>Train a smaller student from a teacher's outputs or stored labels.</summary>
    Distill,
    /// <summary>Score a trained checkpoint; produces metrics, no checkpoint.</summary>
    Evaluate,
}

/// <summary>What each stage kind produces and needs; the single table both validator and scheduler read.</summary>
public static class StageKinds
{
    /// <summary>True for kinds that run an optimiser and so produce a checkpoint another stage can load.</summary>
    public static bool Trains(this StageKind kind) => kind is not (StageKind.Label or StageKind.Evaluate);

    /// <summary>True for kinds whose output is a labelled data set usable as <c>data.from</c> or <c>inputs.labels</c>.</summary>
    public static bool ProducesLabels(this StageKind kind) => kind == StageKind.Label;

    /// <summary>The objectives a stage kind accepts (empty: none allowed or none needed); from <see cref="ObjectiveDescriptors"/>.</summary>
    public static IReadOnlyList<ObjectiveKind> AllowedObjectives(this StageKind kind) => ObjectiveDescriptors.For(kind);
}
