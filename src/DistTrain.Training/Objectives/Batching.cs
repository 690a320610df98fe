using DistTrain.Data.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Objectives;

/// <summary>Turns int rows from the data layer into device tensors; the only place ids cross from arrays to tensors.</summary>
public static class Batching
{
    /// <summary>Rows padded (or cut) to <paramref name="length"/> with <paramref name="pad"/> → (B, length) int64 on <paramref name="device"/>.</summary>
    public static Tensor Ids(IReadOnlyList<int[]> rows, int length, Device device, long pad = SpecialTokens.Pad)
    {
        var flat = new long[rows.Count * length];
        Array.Fill(flat, pad);
        for (int r = 0; r < rows.Count; r++)
        {
            int n = Math.Min(length, rows[r].Length);
            for (int i = 0; i < n; i++) flat[r * length + i] = rows[r][i];
        }
        return torch.tensor(flat, [rows.Count, length], ScalarType.Int64, device);
    }

    /// <summary>Longest row, capped at <paramref name="max"/>: batches are padded to what they need, not to the maximum.</summary>
    public static int Width(IEnumerable<int[]> rows, int max) => Math.Max(1, Math.Min(max, rows.Select(r => r.Length).DefaultIfEmpty(1).Max()));

    /// <summary>Rows padded to the batch's longest row, with their attention mask; both owned by <paramref name="bag"/>.</summary>
    public static (Tensor Ids, Tensor Mask, int Width) Inputs(IReadOnlyList<int[]> rows, Device device, TensorBag bag)
    {
        int width = Width(rows, int.MaxValue);
        var ids = bag.Add(Ids(rows, width, device));     // (B, T)
        return (ids, bag.Add(AttentionMask(ids)), width); // (B, T), (B, T)
    }

    /// <summary>1 where the id is a real token, 0 at padding: (B, T) int64.</summary>
    /// <remarks>
    /// The comparison is held in a <c>using</c> local, not chained (<c>ids.ne(pad).to(…)</c>): batches are built outside
    /// any dispose scope, so nothing referenced the intermediate once <c>to</c> had read its handle, and its finalizer
    /// could free it while libtorch copied from it. Under GcStressSoakTests that crashed the process (SIGSEGV in
    /// <c>THSTensor_to_type</c> → <c>at::native::copy_</c>) or produced a wrong mask (docs/reliability.md).
    /// </remarks>
    public static Tensor AttentionMask(Tensor ids)
    {
        using var real = ids.ne(PadScalar);   // (B, T) bool
        return real.to(ScalarType.Int64);     // (B, T)
    }

    /// <summary>The pad id as a scalar operand rooted for the process (see DistTrain.Models.Scalars for why).</summary>
    private static readonly Scalar PadScalar = SpecialTokens.Pad.ToScalar();

    /// <summary>Per-row booleans (e.g. answer masks) padded with false → (B, length) bool.</summary>
    public static Tensor Flags(IReadOnlyList<bool[]> rows, int length, Device device)
    {
        var flat = new bool[rows.Count * length];
        for (int r = 0; r < rows.Count; r++)
            for (int i = 0; i < Math.Min(length, rows[r].Length); i++) flat[r * length + i] = rows[r][i];
        return torch.tensor(flat, [rows.Count, length], ScalarType.Bool, device);
    }

    /// <summary>One label per row → (B) int64.</summary>
    public static Tensor Labels(IEnumerable<int> labels, Device device)
    {
        var l = labels.Select(x => (long)x).ToArray();
        return torch.tensor(l, [l.Length], ScalarType.Int64, device);
    }
}
