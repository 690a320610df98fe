using System.Buffers.Binary;
using System.Security.Cryptography;

namespace DistTrain.Collective.Wire;

/// <summary>How each data frame (call header, ring segment, reducer bucket) is protected on the wire.</summary>
public enum FrameIntegrity : byte
{
    /// <summary>No tag: the handshake still proves membership, but bytes on the wire can be altered unnoticed.</summary>
    None = 0,
    /// <summary>A 32-byte HMAC-SHA256 tag over (frame number, payload).</summary>
    HmacSha256 = 1,
    /// <summary>A 16-byte AES-256-GMAC tag (AES-GCM with the payload as associated data, the frame number as nonce).</summary>
    AesGmac = 2,
}

/// <summary>The names of <see cref="FrameIntegrity"/> modes in configuration and tables.</summary>
public static class FrameIntegrities
{
    public static string Name(this FrameIntegrity i) => i switch
    {
        FrameIntegrity.None => "none",
        FrameIntegrity.AesGmac => "aes-gmac",
        FrameIntegrity.HmacSha256 => "hmac-sha256",
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    /// <summary>Parses <c>none</c>, <c>aes-gmac</c> or <c>hmac-sha256</c>; anything else is an error naming the valid values.</summary>
    public static FrameIntegrity Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" => FrameIntegrity.None,
        "aes-gmac" => FrameIntegrity.AesGmac,
        "hmac-sha256" => FrameIntegrity.HmacSha256,
        _ => throw new ArgumentException($"unknown frame integrity '{name}' (none, aes-gmac, hmac-sha256)"),
    };
}

/// <summary>A frame's tag did not verify: the bytes were altered, replayed, reordered or sent without the key.</summary>
public sealed class FrameIntegrityException(string message) : Exception(message);

/// <summary>
/// Tags (or checks) the frames of one direction of one connection. The key is that direction's session key, derived
/// from the group secret and both handshake nonces, and the frame number is implicit (a counter both ends keep), so a
/// frame replayed from another connection, another call or another position fails its check.
/// </summary>
internal abstract class FrameSeal : IDisposable
{
    private long _frame;

    public abstract int TagSize { get; }

    public static FrameSeal? Create(FrameIntegrity mode, byte[] key) => mode switch
    {
        FrameIntegrity.None => null,
        FrameIntegrity.HmacSha256 => new HmacSeal(key),
        FrameIntegrity.AesGmac => new GmacSeal(key),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown frame integrity mode."),
    };

    /// <summary>Writes the tag of the next outgoing frame.</summary>
    public void Seal(ReadOnlySpan<byte> payload, Span<byte> tag) => Compute(_frame++, payload, tag);

    /// <summary>Checks the tag of the next incoming frame (constant-time); throws <see cref="FrameIntegrityException"/>.</summary>
    public void Verify(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> tag, int fromRank)
    {
        Span<byte> expected = stackalloc byte[TagSize];
        Compute(_frame, payload, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, tag))
            throw new FrameIntegrityException($"Data frame {_frame} ({payload.Length} bytes) from {PeerFailedException.Describe(fromRank)} " +
                "failed its integrity check: altered, replayed or reordered on the way, or not sent by a member of the group.");
        _frame++;
    }

    protected abstract void Compute(long frame, ReadOnlySpan<byte> payload, Span<byte> tag);
    public abstract void Dispose();

    private sealed class HmacSeal(byte[] key) : FrameSeal
    {
        private readonly IncrementalHash _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        public override int TagSize => 32;

        protected override void Compute(long frame, ReadOnlySpan<byte> payload, Span<byte> tag)
        {
            Span<byte> n = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(n, frame);
            _hmac.AppendData(n);
            _hmac.AppendData(payload);
            _hmac.GetHashAndReset(tag);
        }

        public override void Dispose() => _hmac.Dispose();
    }

    private sealed class GmacSeal(byte[] key) : FrameSeal
    {
        // Each direction of each connection has its own key and counts frames from 0, so a (key, nonce) pair never repeats.
        private readonly AesGcm _gcm = new(key, 16);
        public override int TagSize => 16;

        protected override void Compute(long frame, ReadOnlySpan<byte> payload, Span<byte> tag)
        {
            Span<byte> nonce = stackalloc byte[12];
            nonce.Clear();
            BinaryPrimitives.WriteInt64LittleEndian(nonce[4..], frame);
            _gcm.Encrypt(nonce, ReadOnlySpan<byte>.Empty, Span<byte>.Empty, tag, payload);
        }

        public override void Dispose() => _gcm.Dispose();
    }
}
