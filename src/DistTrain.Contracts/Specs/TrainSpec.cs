namespace DistTrain.Contracts.Specs;

/// <summary>Learning-rate shape after warmup.</summary>
public enum LrSchedule { Cosine, Linear, Constant }

/// <summary>Optimiser hyperparameters of one stage. Batch sizes are global so results do not depend on the worker count.</summary>
/// <param name="Steps">Optimiser steps; required (> 0) for training stages, ignored by label and evaluate.</param>
/// <param name="BatchSize">Examples per optimiser step summed over all workers and micro-batches.</param>
/// <param name="MicroBatches">Gradient-accumulation steps per optimiser step.</param>
/// <param name="Warmup">Linear warmup steps, at most <paramref name="Steps"/>.</param>
/// <param name="Clip">Global gradient-norm clip; 0 disables clipping.</param>
/// <param name="EvalEvery">Steps between evaluations; 0 evaluates only at the end.</param>
/// <param name="CheckpointEvery">Steps between checkpoints; 0 checkpoints only at the end.</param>
/// <param name="Seed">Stage seed; null derives one from the job seed and stage name (<see cref="JobSpec.StageSeed"/>).</param>
/// <param name="FreezeBackbone">Train only the new head and keep the backbone's weights fixed (a linear probe); finetune and reward stages.</param>
public sealed record TrainSpec(
    int Steps = 0,
    int BatchSize = 32,
    int MicroBatches = 1,
    double Lr = 1e-4,
    int Warmup = 0,
    LrSchedule Schedule = LrSchedule.Cosine,
    double WeightDecay = 0.01,
    double Clip = 1.0,
    int EvalEvery = 0,
    int CheckpointEvery = 0,
    int? Seed = null,
    bool FreezeBackbone = false);
