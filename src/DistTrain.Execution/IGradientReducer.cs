namespace DistTrain.Execution;

/// <summary>
/// Sums a flat float buffer across all ranks, in place. The single-process run uses <see cref="LocalReducer"/>;
/// the cluster plugs in the collective data plane (ring or coordinator). Training never knows which.
/// </summary>
public interface IGradientReducer
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>
    /// Replaces elements [offset, offset + length) with their sum over ranks. The last <paramref name="exactTail"/>
    /// elements of that range (counts, flags, loss sums) always travel as fp32, even when gradients use a bf16/fp16
    /// wire format. Must fail (not hang) if a peer is lost. One call at a time, but not necessarily from the device
    /// thread: overlapped gradient buckets are reduced from the trainer's communication thread.
    /// </summary>
    void AllReduceSum(float[] buffer, int offset, int length, int exactTail);
}

/// <summary>The whole-prefix form of <see cref="IGradientReducer.AllReduceSum"/>.</summary>
public static class GradientReducerExtensions
{
    /// <summary>Sums elements [0, length) over ranks; see <see cref="IGradientReducer.AllReduceSum"/>.</summary>
    public static void AllReduceSum(this IGradientReducer reducer, float[] buffer, int length, int exactTail) =>
        reducer.AllReduceSum(buffer, 0, length, exactTail);
}

/// <summary>World size one: the sum over ranks is the buffer itself.</summary>
public sealed class LocalReducer : IGradientReducer
{
    public static readonly LocalReducer Instance = new();
    public int Rank => 0;
    public int WorldSize => 1;
    public void AllReduceSum(float[] buffer, int offset, int length, int exactTail) { }
}
