namespace DistTrain.Training.Optimization;

/// <summary>Learning rate as a pure function of the step: linear warm-up, then cosine, linear or constant decay.</summary>
public sealed record LearningRateSchedule(double PeakLr, int WarmupSteps, int TotalSteps, string Kind = "cosine", double MinLrRatio = 0.1)
{
    public double At(int step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        int decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        double progress = Math.Clamp((double)(step - WarmupSteps) / decaySteps, 0, 1);
        double minLr = PeakLr * MinLrRatio;
        return Kind switch
        {
            "constant" => PeakLr,
            "linear" => PeakLr - (PeakLr - minLr) * progress,
            "cosine" => minLr + 0.5 * (PeakLr - minLr) * (1 + Math.Cos(Math.PI * progress)),
            _ => throw new ArgumentException($"unknown schedule '{Kind}' (cosine, linear, constant)", nameof(Kind)),
        };
    }
}
