using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DistTrain.Cluster.Security;

/// <summary>
/// A throw-away CA for a cluster on one machine (<c>disttrain local</c>, the demo, tests): made at start with
/// <see cref="CertificateRequest"/> (ECDSA P-256), it issues the nodes' certificates into a folder only this user can
/// read, in the layout of a cert-manager Secret (<c>tls.crt</c>, <c>tls.key</c>, <c>ca.crt</c>). Its key never leaves
/// the process, so nothing outside it can issue a certificate this cluster accepts.
/// </summary>
public sealed class LocalCertificateAuthority : IDisposable
{
    private readonly ECDsa _key;
    private long _serial;

    /// <summary>The CA's certificate, with its private key (self-signed).</summary>
    public X509Certificate2 Certificate { get; }

    private LocalCertificateAuthority(ECDsa key, X509Certificate2 certificate)
    {
        _key = key;
        Certificate = certificate;
    }

    /// <param name="name">Goes into the CA's subject, so logs tell one throw-away CA from another.</param>
    public static LocalCertificateAuthority Create(string name = "DistTrain local cluster CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}, O=DistTrain"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return new LocalCertificateAuthority(key, request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30)));
    }

    /// <summary>
    /// Issues a node certificate (both TLS client and server, since every node dials and is dialled) and writes
    /// <c>tls.crt</c>, <c>tls.key</c> and <c>ca.crt</c> into <paramref name="directory"/>.
    /// </summary>
    /// <param name="notBefore">Start of validity (tests pass past dates to make an expired certificate).</param>
    public ClusterTlsFiles Issue(string directory, string commonName = "disttrain-node", DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={commonName}, O=DistTrain"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "serverAuth"), new Oid("1.3.6.1.5.5.7.3.2", "clientAuth")], critical: false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var now = DateTimeOffset.UtcNow;
        byte[] serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial) + now.ToUnixTimeMilliseconds() * 1000);
        Array.Reverse(serial);
        serial[0] &= 0x7F;   // a positive serial number
        using var issued = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key),
            notBefore ?? now.AddMinutes(-5), notAfter ?? now.AddDays(30), serial);

        Directory.CreateDirectory(directory);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var files = new ClusterTlsFiles(Path.Combine(directory, "tls.crt"), Path.Combine(directory, "tls.key"), Path.Combine(directory, "ca.crt"));
        File.WriteAllText(files.Certificate, issued.ExportCertificatePem() + "\n");
        WritePrivate(files.Key!, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.WriteAllText(files.Authority, Certificate.ExportCertificatePem() + "\n");
        return files;
    }

    /// <summary>Writes a CRL (PEM) signed by this CA that lists the certificates of <paramref name="revoked"/>.</summary>
    public void WriteRevocationList(string path, IEnumerable<ClusterTlsFiles> revoked, TimeSpan? validFor = null)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (var files in revoked)
        {
            using var cert = X509Certificate2.CreateFromPem(File.ReadAllText(files.Certificate));
            builder.AddEntry(cert, DateTimeOffset.UtcNow, X509RevocationReason.KeyCompromise);
        }
        var now = DateTimeOffset.UtcNow;
        var next = now.Add(validFor ?? TimeSpan.FromDays(7));
        // A negative validity (tests) makes a list that has already expired: issued a minute before it ran out.
        var issued = next < now ? next.AddMinutes(-1) : now;
        byte[] der = builder.Build(Certificate, BigInteger.One, next, HashAlgorithmName.SHA256, thisUpdate: issued);
        File.WriteAllText(path, PemEncoding.WriteString("X509 CRL", der) + "\n");
    }

    private static void WritePrivate(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
