namespace DistTrain.Training.Sampling;

/// <summary>
/// Where a job stands in its data: the epoch and how many examples of that epoch's global order are consumed.
/// It does not depend on the world size, which is what lets a job resume at any step with a different
/// number of workers and still see every example of the epoch exactly once.
/// </summary>
public sealed record SamplerState(int Epoch, long Cursor)
{
    public static readonly SamplerState Start = new(0, 0);
}
