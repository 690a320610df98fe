using DistTrain.Training.Sampling;

namespace DistTrain.Training.Checkpointing;

/// <summary>Everything besides tensors that a bit-exact resume needs: the next step to run and the data position.</summary>
public sealed record TrainingState(int Step, SamplerState Sampler, long Seed, int WorldSizeAtSave, IReadOnlyDictionary<string, string>? Metadata = null);
