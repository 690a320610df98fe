using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DistTrain.Cluster.Security;

/// <summary>
/// Who may associate with this node over remoting: a peer whose certificate chains to the cluster's CA (and to nothing
/// else: the machine's trust store would admit anyone holding a certificate from a public CA), is within its validity
/// period, and is not on the CA's revocation list. Akka.Remote calls <see cref="Check"/> on both ends of every TLS
/// handshake (the server checks the client's certificate too: mutual authentication).
/// </summary>
public sealed class PeerCertificatePolicy(X509Certificate2Collection authority, string? revocationListPath = null)
{
    private readonly RevocationList? _revocations = revocationListPath is null ? null : new RevocationList(revocationListPath, authority);

    /// <summary>Null when <paramref name="peer"/> may associate; otherwise why not, in words for the log.</summary>
    /// <param name="presented">Intermediates the peer sent with its certificate (the TLS chain); may be empty.</param>
    public string? Check(X509Certificate2? peer, X509Certificate2Collection presented, DateTime? now = null)
    {
        if (peer is null) return "the peer presented no certificate";
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authority);
        chain.ChainPolicy.ExtraStore.AddRange(presented);
        // Revocation is this class's own CRL check below: the chain engine would try to download CRLs from URLs in
        // the certificates, which a cluster's private CA has none of (and a pod cannot reach anyway).
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = (now ?? DateTime.Now).ToLocalTime();
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (!chain.Build(peer))
        {
            var problems = chain.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.NoError)
                .Select(s => s.Status switch
                {
                    X509ChainStatusFlags.NotTimeValid => $"not valid at this time (valid {peer.NotBefore.ToUniversalTime():u} to {peer.NotAfter.ToUniversalTime():u})",
                    X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => $"not issued by the cluster's CA (issuer {peer.Issuer})",
                    _ => $"{s.Status}: {s.StatusInformation.Trim()}",
                }).Distinct();
            return $"certificate {peer.Subject} (serial {peer.SerialNumber}) {string.Join("; ", problems)}";
        }
        if (_revocations?.Check(peer) is { } revoked)
            return $"certificate {peer.Subject} (serial {peer.SerialNumber}) {revoked}";
        return null;
    }

    /// <summary>A CRL file, verified against the CA that signed it and re-read whenever the file changes.</summary>
    private sealed class RevocationList(string path, X509Certificate2Collection authority)
    {
        private readonly Lock _gate = new();
        private DateTime _readAt = DateTime.MinValue;
        private (HashSet<BigInteger> Serials, DateTime? NextUpdate, byte[] Issuer)? _list;
        private string? _error;

        public string? Check(X509Certificate2 peer)
        {
            lock (_gate)
            {
                Refresh();
                // Fail closed: a node told to check revocation admits nobody while it cannot read the list.
                if (_error is not null) return $"cannot be checked for revocation: {_error}";
                var (serials, next, issuer) = _list!.Value;
                // Serial numbers are unique per issuer only: a list from another CA says nothing about this certificate.
                if (!issuer.AsSpan().SequenceEqual(peer.IssuerName.RawData))
                    return $"cannot be checked for revocation: the revocation list {path} is not from its issuer ({peer.Issuer})";
                if (next is { } n && n < DateTime.UtcNow)
                    return $"cannot be checked for revocation: the revocation list {path} expired at {n:u} (publish a fresh one)";
                var serial = new BigInteger(peer.SerialNumberBytes.Span, isUnsigned: true, isBigEndian: true);
                return serials.Contains(serial) ? $"is revoked (listed in {path})" : null;
            }
        }

        private void Refresh()
        {
            DateTime written;
            try { written = File.GetLastWriteTimeUtc(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _error = e.Message; return; }
            if (written == _readAt && (_list is not null || _error is not null)) return;
            _readAt = written;
            try
            {
                _list = Parse(File.ReadAllBytes(path), authority);
                _error = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or AsnContentException or CryptographicException or FormatException)
            {
                _list = null;
                _error = $"{path}: {e.Message}";
            }
        }
    }

    /// <summary>
    /// Parses an X.509 CRL (RFC 5280 §5.1, PEM or DER), checks its signature against a certificate of
    /// <paramref name="authority"/> and returns its revoked serial numbers, next update and issuer (DER name).
    /// </summary>
    internal static (HashSet<BigInteger> Serials, DateTime? NextUpdate, byte[] Issuer) Parse(byte[] file, X509Certificate2Collection authority)
    {
        byte[] der = file;
        string text = System.Text.Encoding.ASCII.GetString(file);
        if (text.Contains("-----BEGIN X509 CRL-----"))
        {
            var pem = PemEncoding.Find(text);
            der = Convert.FromBase64String(text[pem.Base64Data]);
        }
        var outer = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
        ReadOnlyMemory<byte> tbsBytes = outer.ReadEncodedValue();
        string algorithm = outer.ReadSequence().ReadObjectIdentifier();
        byte[] signature = outer.ReadBitString(out _);

        var tbs = new AsnReader(tbsBytes, AsnEncodingRules.DER).ReadSequence();
        if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer)) tbs.ReadInteger();   // version
        tbs.ReadSequence();                                                            // signature algorithm (again)
        byte[] issuer = tbs.ReadEncodedValue().ToArray();
        ReadTime(tbs);                                                                 // thisUpdate
        DateTime? next = tbs.HasData && IsTime(tbs.PeekTag()) ? ReadTime(tbs) : null;
        var serials = new HashSet<BigInteger>();
        if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var entries = tbs.ReadSequence();
            while (entries.HasData)
            {
                var entry = entries.ReadSequence();
                serials.Add(new BigInteger(entry.ReadIntegerBytes().Span, isUnsigned: true, isBigEndian: true));
            }
        }

        var signer = authority.FirstOrDefault(c => c.SubjectName.RawData.AsSpan().SequenceEqual(issuer))
            ?? throw new CryptographicException("the revocation list's issuer is not a certificate of the cluster's CA file");
        if (!Verify(signer, algorithm, tbsBytes.Span, signature))
            throw new CryptographicException($"the revocation list's signature does not verify with {signer.Subject}'s key");
        return (serials, next, issuer);
    }

    private static bool IsTime(Asn1Tag tag) => tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

    private static DateTime ReadTime(AsnReader r) => (r.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime)
        ? r.ReadUtcTime() : r.ReadGeneralizedTime()).UtcDateTime;

    private static bool Verify(X509Certificate2 signer, string algorithm, ReadOnlySpan<byte> data, byte[] signature)
    {
        (HashAlgorithmName hash, bool ecdsa) = algorithm switch
        {
            "1.2.840.10045.4.3.2" => (HashAlgorithmName.SHA256, true),
            "1.2.840.10045.4.3.3" => (HashAlgorithmName.SHA384, true),
            "1.2.840.10045.4.3.4" => (HashAlgorithmName.SHA512, true),
            "1.2.840.113549.1.1.11" => (HashAlgorithmName.SHA256, false),
            "1.2.840.113549.1.1.12" => (HashAlgorithmName.SHA384, false),
            "1.2.840.113549.1.1.13" => (HashAlgorithmName.SHA512, false),
            _ => throw new CryptographicException($"unsupported revocation list signature algorithm {algorithm} (ECDSA or RSA with SHA-256/384/512)"),
        };
        if (ecdsa)
        {
            using var key = signer.GetECDsaPublicKey() ?? throw new CryptographicException("the CA's key is not ECDSA");
            return key.VerifyData(data, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
        }
        using var rsa = signer.GetRSAPublicKey() ?? throw new CryptographicException("the CA's key is not RSA");
        return rsa.VerifyData(data, signature, hash, RSASignaturePadding.Pkcs1);
    }
}
