using System.Buffers.Binary;
using System.Text;

namespace DistTrain.Collective.Wire;

/// <summary>Which of a link's two connections a socket is: bulk data, or the small control channel.</summary>
internal enum Channel : byte { Data = 1, Control = 2 }

/// <summary>The acceptor's answer to a <see cref="Hello"/>.</summary>
public enum HandshakeStatus : byte
{
    Accepted = 0,
    /// <summary>The connector belongs to an older generation of the group (a leftover from before a re-form).</summary>
    StaleGeneration = 1,
    /// <summary>The connector is ahead of this listener's group; it may retry until the old group is gone.</summary>
    FutureGeneration = 2,
    WrongJob = 3,
    /// <summary>Rank, world size or channel do not fit the group the listener serves.</summary>
    BadMember = 4,
    /// <summary>No group was registered on the listener within the handshake timeout.</summary>
    NoGroup = 5,
    Duplicate = 6,
}

/// <summary>First message on every connection: who is calling whom, in which job and generation.</summary>
internal sealed record Hello(string JobId, long Generation, int FromRank, int ToRank, int WorldSize, Channel Channel)
{
    public const uint Magic = 0x50444454; // "TDDP" little-endian: DistTrain data plane
    public const ushort Version = 1;
    private const int FixedBytes = 4 + 2 + 1 + 1 + 8 + 4 + 4 + 4 + 2;
    public const int MaxJobIdBytes = 256;

    public byte[] Encode()
    {
        var job = Encoding.UTF8.GetBytes(JobId);
        if (job.Length > MaxJobIdBytes) throw new ArgumentException($"Job id longer than {MaxJobIdBytes} bytes.");
        var b = new byte[FixedBytes + job.Length];
        var s = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], Version);
        s[6] = (byte)Channel;
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], Generation);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FromRank);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], ToRank);
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], WorldSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)job.Length);
        job.CopyTo(s[FixedBytes..]);
        return b;
    }

    /// <summary>Reads a hello from a connected socket; throws <see cref="InvalidDataException"/> on garbage.</summary>
    public static Hello Read(System.Net.Sockets.Socket socket)
    {
        var head = new byte[FixedBytes];
        SocketIo.ReceiveExact(socket, head);
        if (BinaryPrimitives.ReadUInt32LittleEndian(head) != Magic) throw new InvalidDataException("Not a DistTrain data-plane connection.");
        if (BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(4)) != Version) throw new InvalidDataException("Unsupported data-plane protocol version.");
        int jobLen = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(28));
        if (jobLen > MaxJobIdBytes) throw new InvalidDataException("Job id too long.");
        var job = new byte[jobLen];
        SocketIo.ReceiveExact(socket, job);
        var channel = (Channel)head[6];
        if (channel is not (Channel.Data or Channel.Control)) throw new InvalidDataException("Unknown channel.");
        return new Hello(Encoding.UTF8.GetString(job), BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(8)),
            BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(16)), BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(20)),
            BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(24)), channel);
    }

    /// <summary>Ack: one status byte plus the acceptor's generation (so a rejected connector can say why).</summary>
    public static byte[] EncodeAck(HandshakeStatus status, long generation)
    {
        var b = new byte[9];
        b[0] = (byte)status;
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(1), generation);
        return b;
    }
}
