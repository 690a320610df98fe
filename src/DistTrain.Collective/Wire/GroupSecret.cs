using System.Security.Cryptography;
using System.Text;

namespace DistTrain.Collective.Wire;

/// <summary>
/// The per-generation key every data-plane connection proves it holds: the coordinator draws it from a CSPRNG when it
/// forms a generation and hands it to the members over the control plane. <see cref="ToString"/> never shows it, so a
/// spec or message that carries it can be logged.
/// </summary>
public sealed class GroupSecret
{
    public const int Size = 32;
    private readonly byte[] _key;

    public GroupSecret(ReadOnlySpan<byte> key)
    {
        if (key.Length != Size) throw new ArgumentException($"A group secret is {Size} bytes, got {key.Length}.", nameof(key));
        _key = key.ToArray();
    }

    /// <summary>32 fresh bytes from the OS CSPRNG.</summary>
    public static GroupSecret Generate() => new(RandomNumberGenerator.GetBytes(Size));

    /// <summary>A copy of the key, for the control-plane message that hands it to a member.</summary>
    public byte[] ToBytes() => (byte[])_key.Clone();

    public override string ToString() => "GroupSecret(redacted)";

    /// <summary>HMAC-SHA256 under the secret of a label followed by <paramref name="parts"/>.</summary>
    internal byte[] Mac(string label, params byte[][] parts)
    {
        using var h = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        h.AppendData(Encoding.ASCII.GetBytes(label));
        foreach (var p in parts) h.AppendData(p);
        return h.GetHashAndReset();
    }
}
