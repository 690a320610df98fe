using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
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
    /// <summary>The connector did not prove it holds the generation's group secret.</summary>
    BadProof = 7,
    /// <summary>The two ends are configured with different <see cref="FrameIntegrity"/> modes.</summary>
    IntegrityMismatch = 8,
}

/// <summary>First message on every connection: who is calling whom, in which job and generation, with a fresh nonce.</summary>
internal sealed record Hello(string JobId, long Generation, int FromRank, int ToRank, int WorldSize, Channel Channel,
    FrameIntegrity Integrity, byte[] Nonce)
{
    public const uint Magic = 0x50444454; // "TDDP" little-endian: DistTrain data plane
    public const ushort Version = 3;   // 3: links negotiate shared memory after the handshake
    public const int NonceBytes = 32;
    private const int FixedBytes = 4 + 2 + 1 + 1 + 8 + 4 + 4 + 4 + 2 + NonceBytes;
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
        s[7] = (byte)Integrity;
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], Generation);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FromRank);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], ToRank);
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], WorldSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)job.Length);
        Nonce.CopyTo(s[30..]);
        job.CopyTo(s[FixedBytes..]);
        return b;
    }

    /// <summary>Reads a hello from a connected socket; throws <see cref="InvalidDataException"/> on garbage. <paramref name="raw"/> is what the proofs cover.</summary>
    public static Hello Read(Socket socket, out byte[] raw)
    {
        var head = new byte[FixedBytes];
        SocketIo.ReceiveExact(socket, head);
        if (BinaryPrimitives.ReadUInt32LittleEndian(head) != Magic) throw new InvalidDataException("Not a DistTrain data-plane connection.");
        if (BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(4)) != Version) throw new InvalidDataException("Unsupported data-plane protocol version.");
        int jobLen = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(28));
        if (jobLen > MaxJobIdBytes) throw new InvalidDataException("Job id too long.");
        raw = new byte[FixedBytes + jobLen];
        head.CopyTo(raw, 0);
        SocketIo.ReceiveExact(socket, raw.AsSpan(FixedBytes));
        var channel = (Channel)head[6];
        if (channel is not (Channel.Data or Channel.Control)) throw new InvalidDataException("Unknown channel.");
        return new Hello(Encoding.UTF8.GetString(raw, FixedBytes, jobLen), BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(8)),
            BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(16)), BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(20)),
            BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(24)), channel, (FrameIntegrity)head[7], head.AsSpan(30, NonceBytes).ToArray());
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

/// <summary>The frame seals of one authenticated connection, one per direction (both null with <see cref="FrameIntegrity.None"/>).</summary>
internal sealed record Session(FrameSeal? Outgoing, FrameSeal? Incoming);

/// <summary>
/// Mutual proof of the group secret K after the hello, so neither end trusts a peer for knowing a port and a job id:
/// <code>
/// connector → acceptor   hello (job, generation, ranks, integrity mode, nonce Nc)
/// acceptor  → connector  ack Accepted, nonce Na
/// connector → acceptor   HMAC(K, "connector" ‖ hello ‖ Na)
/// acceptor  → connector  BadProof and close; or Accepted, HMAC(K, "acceptor" ‖ hello ‖ Na)
/// </code>
/// The acceptor judges the connector first, so a client without K is refused (and logged) before it learns anything
/// keyed by K. Both MACs cover both fresh nonces (Nc inside the hello), so a recorded exchange cannot be replayed, and
/// the labels differ, so one side's proof is never valid as the other's. Frame keys per direction are
/// HMAC(K, label ‖ hello ‖ Na): fresh for every connection.
/// </summary>
internal static class Proof
{
    public const int MacBytes = 32;
    private const string AcceptorLabel = "disttrain-dataplane/v2/acceptor", ConnectorLabel = "disttrain-dataplane/v2/connector";
    private const string ToAcceptor = "disttrain-dataplane/v2/frames/to-acceptor", ToConnector = "disttrain-dataplane/v2/frames/to-connector";

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(Hello.NonceBytes);

    /// <summary>Acceptor side, after the hello fits a registered group; null when the connector's proof is wrong (the caller refuses and logs).</summary>
    public static Session? Accept(Socket socket, byte[] helloBytes, GroupSecret secret, FrameIntegrity mode, long generation)
    {
        var na = NewNonce();
        var challenge = new byte[9 + Hello.NonceBytes];
        Hello.EncodeAck(HandshakeStatus.Accepted, generation).CopyTo(challenge, 0);
        na.CopyTo(challenge, 9);
        SocketIo.SendExact(socket, challenge);
        var theirs = new byte[MacBytes];
        SocketIo.ReceiveExact(socket, theirs);
        if (!CryptographicOperations.FixedTimeEquals(theirs, secret.Mac(ConnectorLabel, helloBytes, na))) return null;
        var answer = new byte[1 + MacBytes];
        answer[0] = (byte)HandshakeStatus.Accepted;
        secret.Mac(AcceptorLabel, helloBytes, na).CopyTo(answer, 1);
        SocketIo.SendExact(socket, answer);
        return new Session(FrameSeal.Create(mode, secret.Mac(ToConnector, helloBytes, na)), FrameSeal.Create(mode, secret.Mac(ToAcceptor, helloBytes, na)));
    }

    /// <summary>Connector side, after an Accepted ack: sends our proof, reads the verdict, checks the acceptor's proof.</summary>
    public static Session Connect(Socket socket, byte[] helloBytes, GroupSecret secret, FrameIntegrity mode, int toRank, long theirGeneration)
    {
        var na = new byte[Hello.NonceBytes];
        SocketIo.ReceiveExact(socket, na);
        SocketIo.SendExact(socket, secret.Mac(ConnectorLabel, helloBytes, na));
        var verdict = new byte[1];
        SocketIo.ReceiveExact(socket, verdict);
        if ((HandshakeStatus)verdict[0] != HandshakeStatus.Accepted)
            throw new HandshakeRejectedException((HandshakeStatus)verdict[0], toRank, theirGeneration,
                (HandshakeStatus)verdict[0] == HandshakeStatus.BadProof
                    ? $"{PeerFailedException.Describe(toRank)} refused the connection: BadProof (this member's group secret is not the generation's)."
                    : null);
        var theirs = new byte[MacBytes];
        SocketIo.ReceiveExact(socket, theirs);
        if (!CryptographicOperations.FixedTimeEquals(theirs, secret.Mac(AcceptorLabel, helloBytes, na)))
            throw new HandshakeRejectedException(HandshakeStatus.BadProof, toRank, theirGeneration,
                $"{PeerFailedException.Describe(toRank)} at {socket.RemoteEndPoint} did not prove it holds the group secret.");
        return new Session(FrameSeal.Create(mode, secret.Mac(ToAcceptor, helloBytes, na)), FrameSeal.Create(mode, secret.Mac(ToConnector, helloBytes, na)));
    }
}
