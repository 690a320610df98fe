using System.Buffers.Binary;

namespace DistTrain.Collective.Wire;

/// <summary>
/// Sent once per collective ahead of the raw payload, so two ranks that disagree on the call
/// (sequence, length, bucket size, wire format) fail loudly instead of summing misaligned bytes.
/// Payload bytes after it carry no framing: both sides derive the schedule from these fields.
/// </summary>
internal readonly record struct CallHeader(long Sequence, long Length, int BucketElements, WireFormat Wire)
{
    public const int Size = 32;
    private const uint Magic = 0x4C4C4143; // "CALL"

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        b[4] = (byte)Wire;
        BinaryPrimitives.WriteInt64LittleEndian(b[8..], Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], Length);
        BinaryPrimitives.WriteInt32LittleEndian(b[24..], BucketElements);
    }

    public static CallHeader Read(ReadOnlySpan<byte> b)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(b) != Magic) throw new InvalidDataException("Data stream out of sync (no call header).");
        return new CallHeader(BinaryPrimitives.ReadInt64LittleEndian(b[8..]), BinaryPrimitives.ReadInt64LittleEndian(b[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[24..]), (WireFormat)b[4]);
    }
}
