using System.Security.Cryptography.X509Certificates;
using DistTrain.Cluster.Security;
using DistTrain.Cluster.Tests.Functional;

namespace DistTrain.Cluster.Tests.Security;

/// <summary>The policy each node applies to its peers' certificates, without a network: CA, validity, revocation list.</summary>
public sealed class PeerCertificatePolicyTests
{
    private static X509Certificate2 Load(ClusterTlsFiles files) => X509Certificate2.CreateFromPem(File.ReadAllText(files.Certificate));

    private static X509Certificate2Collection Authority(ClusterTlsFiles files)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(files.Authority);
        return roots;
    }

    [Fact]
    public void A_certificate_of_the_cluster_CA_passes_and_the_others_are_refused_with_the_reason()
    {
        using var dir = new TempDir();
        using var cluster = LocalCertificateAuthority.Create("cluster CA");
        using var other = LocalCertificateAuthority.Create("other CA");
        var member = cluster.Issue(Path.Combine(dir.Path, "member"));
        var policy = new PeerCertificatePolicy(Authority(member));

        Assert.Null(policy.Check(Load(member), []));
        Assert.Contains("presented no certificate", policy.Check(null, []));
        Assert.Contains("not issued by the cluster's CA (issuer CN=other CA",
            policy.Check(Load(other.Issue(Path.Combine(dir.Path, "foreign"))), []));
        var expired = cluster.Issue(Path.Combine(dir.Path, "expired"), notBefore: DateTimeOffset.UtcNow.AddDays(-3), notAfter: DateTimeOffset.UtcNow.AddDays(-1));
        string? reason = policy.Check(Load(expired), []);
        Assert.Contains("not valid at this time", reason);
        Assert.Contains($"to {Load(expired).NotAfter.ToUniversalTime():u}", reason);   // when it ran out
        // A certificate that the cluster CA did not sign but that names it as issuer (a forged chain) does not pass either.
        var impostor = LocalCertificateAuthority.Create("cluster CA");
        Assert.Contains("not issued by the cluster's CA", policy.Check(Load(impostor.Issue(Path.Combine(dir.Path, "impostor"))), []));
        impostor.Dispose();
    }

    [Fact]
    public void A_revoked_certificate_is_refused_as_soon_as_the_list_names_it_and_a_list_it_cannot_trust_refuses_everyone()
    {
        using var dir = new TempDir();
        using var cluster = LocalCertificateAuthority.Create("cluster CA");
        using var other = LocalCertificateAuthority.Create("other CA");
        var member = cluster.Issue(Path.Combine(dir.Path, "member"));
        var leaked = cluster.Issue(Path.Combine(dir.Path, "leaked"));
        string crl = Path.Combine(dir.Path, "ca.crl");
        cluster.WriteRevocationList(crl, []);
        var policy = new PeerCertificatePolicy(Authority(member), crl);
        Assert.Null(policy.Check(Load(leaked), []));

        // Revoking needs no restart: the list is re-read when the file changes (a Secret volume's update, for one).
        cluster.WriteRevocationList(crl, [leaked]);
        File.SetLastWriteTimeUtc(crl, DateTime.UtcNow.AddSeconds(5));
        Assert.Contains("is revoked", policy.Check(Load(leaked), []));
        Assert.Null(policy.Check(Load(member), []));

        // A list signed by someone else is not believed, and nobody gets in while it is there (fail closed).
        other.WriteRevocationList(crl, []);
        File.SetLastWriteTimeUtc(crl, DateTime.UtcNow.AddSeconds(10));
        Assert.Contains("cannot be checked for revocation", policy.Check(Load(member), []));
        // An expired list likewise.
        cluster.WriteRevocationList(crl, [], validFor: TimeSpan.FromSeconds(-1));
        File.SetLastWriteTimeUtc(crl, DateTime.UtcNow.AddSeconds(15));
        Assert.Contains("expired", policy.Check(Load(member), []));
        // A damaged one too.
        File.WriteAllText(crl, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
        File.SetLastWriteTimeUtc(crl, DateTime.UtcNow.AddSeconds(20));
        Assert.Contains("cannot be checked for revocation", policy.Check(Load(member), []));
    }

    [Fact]
    public void Missing_or_mismatched_files_are_refused_naming_the_file()
    {
        using var dir = new TempDir();
        using var cluster = LocalCertificateAuthority.Create();
        var files = cluster.Issue(Path.Combine(dir.Path, "node"));
        Assert.NotNull(files.Load().Certificate);
        var e = Assert.Throws<ArgumentException>(() => (files with { Key = Path.Combine(dir.Path, "missing.key") }).Load());
        Assert.Contains("missing.key", e.Message);
        e = Assert.Throws<ArgumentException>(() => (files with { Key = null }).Load());
        Assert.Contains("private key file", e.Message);
        var other = cluster.Issue(Path.Combine(dir.Path, "other"));
        e = Assert.Throws<ArgumentException>(() => (files with { Key = other.Key }).Load());
        Assert.Contains(files.Certificate, e.Message);
    }
}
