using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DistTrain.Cluster.Security;

/// <summary>
/// Where a node's remoting certificate, its key, the cluster's CA and (optionally) a revocation list live: the files a
/// cert-manager Certificate writes into a Kubernetes Secret (<c>tls.crt</c>, <c>tls.key</c>, <c>ca.crt</c>), or a
/// PKCS#12 file (<c>.pfx</c>/<c>.p12</c>) with no separate key.
/// </summary>
/// <param name="Certificate">The node's certificate: PEM (with its intermediates after it, if any) or PKCS#12.</param>
/// <param name="Key">The PEM private key of a PEM certificate; null for PKCS#12.</param>
/// <param name="Authority">PEM bundle of the CA certificates a peer's certificate must chain to; nothing else is trusted.</param>
/// <param name="RevocationList">A CRL (PEM or DER) signed by that CA; certificates it lists are refused. Re-read when the file changes.</param>
/// <param name="Password">The PKCS#12 file's password, if it has one.</param>
public sealed record ClusterTlsFiles(string Certificate, string? Key, string Authority, string? RevocationList = null, string? Password = null)
{
    /// <summary>These files as the environment of a child <c>disttrain node</c> process.</summary>
    public IReadOnlyDictionary<string, string> Environment()
    {
        var env = new Dictionary<string, string>
        {
            [Hosting.EnvironmentVariables.ClusterTlsCertificate] = Certificate,
            [Hosting.EnvironmentVariables.ClusterTlsAuthority] = Authority,
        };
        if (Key is not null) env[Hosting.EnvironmentVariables.ClusterTlsKey] = Key;
        if (RevocationList is not null) env[Hosting.EnvironmentVariables.ClusterTlsRevocationList] = RevocationList;
        if (Password is not null) env[Hosting.EnvironmentVariables.ClusterTlsPassword] = Password;
        return env;
    }

    private static bool IsPkcs12(string path) =>
        path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads the files; a missing, unreadable or inconsistent file is an <see cref="ArgumentException"/> naming it.</summary>
    public ClusterTlsMaterial Load()
    {
        bool pkcs12 = IsPkcs12(Certificate);
        if (pkcs12 && Key is not null) throw new ArgumentException($"cluster TLS: {Certificate} is PKCS#12 (it holds its key): leave the key file unset");
        if (!pkcs12 && Key is null) throw new ArgumentException($"cluster TLS: {Certificate} is PEM: the node needs its private key file too");
        X509Certificate2 node;
        var roots = new X509Certificate2Collection();
        try
        {
            node = pkcs12 ? X509CertificateLoader.LoadPkcs12FromFile(Certificate, Password) : X509Certificate2.CreateFromPemFile(Certificate, Key);
            roots.ImportFromPemFile(Authority);
        }
        // ArgumentException: a key that is not the certificate's.
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new ArgumentException($"cluster TLS: cannot load the certificate ({Certificate}), key ({Key ?? "in the PKCS#12 file"}) or CA ({Authority}): {e.Message}", e);
        }
        if (!node.HasPrivateKey) throw new ArgumentException($"cluster TLS: {Certificate} has no private key");
        if (roots.Count == 0) throw new ArgumentException($"cluster TLS: {Authority} holds no PEM certificate");
        // Intermediates after the leaf in tls.crt help check this node's own chain here; Akka hands SslStream the leaf
        // alone, so peers find an intermediate only in their ca.crt (docs/security.md).
        var intermediates = new X509Certificate2Collection();
        if (!IsPkcs12(Certificate))
        {
            intermediates.ImportFromPemFile(Certificate);
            intermediates.RemoveAt(0);
        }
        var policy = new PeerCertificatePolicy(roots, RevocationList);
        // A node whose own certificate its peers would refuse starts anyway (it may be renewed under it, and the peers'
        // refusal is what keeps it out), but says why it will be refused in its own log too.
        return new ClusterTlsMaterial(node, policy, policy.Check(node, intermediates));
    }
}

/// <summary>A node's loaded remoting certificate and the policy it applies to every peer.</summary>
/// <param name="OwnProblem">Why the peers will refuse this node's own certificate (expired, another CA, revoked); null if they accept it.</param>
public sealed record ClusterTlsMaterial(X509Certificate2 Certificate, PeerCertificatePolicy Policy, string? OwnProblem);
