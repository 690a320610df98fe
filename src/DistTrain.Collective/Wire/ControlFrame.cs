using System.Buffers.Binary;

namespace DistTrain.Collective.Wire;

/// <summary>Kinds of message on a link's control channel (fixed 16-byte frames).</summary>
internal enum ControlKind : byte
{
    /// <summary>The sender saw a data-plane error on its link to <see cref="ControlFrame.Rank"/> (weak evidence).</summary>
    Suspect = 1,
    /// <summary>The sender's group failed and it names <see cref="ControlFrame.Rank"/> as the culprit (strong evidence).</summary>
    Abort = 2,
    /// <summary>The sender closed its group in an orderly way.</summary>
    Leave = 3,
}

/// <summary>One control message; control channels exist so failures can be named even while data sockets are mid-stream.</summary>
internal readonly record struct ControlFrame(ControlKind Kind, int Rank, byte Reason)
{
    public const int Size = 16;

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        b[0] = (byte)Kind;
        b[1] = Reason;
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], Rank);
    }

    public static ControlFrame Read(ReadOnlySpan<byte> b) =>
        new((ControlKind)b[0], BinaryPrimitives.ReadInt32LittleEndian(b[4..]), b[1]);
}
