using DistTrain.Host;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DistTrain.Api.Hosting;
using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;

namespace DistTrain.Api.Tests.Functional;

/// <summary>Bearer tokens and TLS on a real node: who gets in, who does not, and what stays open.</summary>
public sealed class SecurityTests
{
    private const string Token = "s3cret-token-for-tests";
    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task Calls_without_the_right_token_are_unauthenticated_while_health_stays_open()
    {
        await using var node = await ApiNode.StartAsync(token: Token);
        await node.WaitUntilServingAsync();   // health needs no token
        foreach (var token in new string?[] { null, "wrong", Token + "x", "" })
        {
            using var channel = node.Channel(token);
            var e = await Assert.ThrowsAsync<RpcException>(() => new Jobs.JobsClient(channel).ListJobsAsync(new ListJobsRequest(), deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
            var reflection = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: Deadline);
                await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
                await call.ResponseStream.MoveNext();
            });
            Assert.Equal(StatusCode.Unauthenticated, reflection.StatusCode);
            var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = ApiServer.JobsServiceName }, deadline: Deadline);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        }
        using var authorised = node.Channel(Token);
        var client = new Jobs.JobsClient(authorised);
        var id = (await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt("with-token") }, deadline: Deadline)).JobId;
        Assert.Contains((await client.ListJobsAsync(new ListJobsRequest(), deadline: Deadline)).Jobs, j => j.JobId == id);
    }

    [Fact]
    public void A_coordinator_refuses_to_serve_the_api_without_a_token_outside_local_mode()
    {
        using var dir = new TempDir();
        var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", LoopbackPorts.Free(), [], [], Path.GetTempPath())
            { GrpcPort = LoopbackPorts.Free(), ClusterTls = ApiNode.LocalTls(dir.Path) };
        var e = Assert.Throws<ArgumentException>(() => NodeComposition.Build(settings));
        Assert.Contains(EnvironmentVariables.ApiToken, e.Message);
        // No API, no token needed; local mode may go without.
        (settings with { GrpcPort = 0 }).Validate();
        (settings with { AllowAnonymousApi = true }).Validate();
    }

    [Fact]
    public async Task Tls_serves_clients_that_trust_the_certificate_and_refuses_the_rest()
    {
        using var dir = new TempDir();
        var (certPath, keyPath, certificate) = SelfSigned(dir.Path);
        await using var node = await ApiNode.StartAsync(token: Token, tlsCertificate: certPath, tlsKey: keyPath);
        Assert.StartsWith("https://", node.Address);

        var trusting = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString(),
            },
        };
        using (var channel = node.Channel(Token, trusting))
        {
            var client = new Jobs.JobsClient(channel);
            var id = (await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt("over-tls") }, deadline: Deadline)).JobId;
            Assert.Equal("over-tls", (await client.GetJobAsync(new GetJobRequest { JobId = id }, deadline: Deadline)).Name);
        }
        // The system does not trust a self-signed certificate.
        using (var channel = node.Channel(Token))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => new Jobs.JobsClient(channel).ListJobsAsync(new ListJobsRequest(), deadline: Deadline).ResponseAsync);
            Assert.True(e.Status.DebugException is HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException }, e.ToString());
        }
        // Cleartext HTTP/2 to the TLS port gets nowhere.
        using (var channel = DistTrain.Api.Client.ApiChannel.Create(node.Address.Replace("https://", "http://"), Token))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => new Jobs.JobsClient(channel).ListJobsAsync(new ListJobsRequest(), deadline: Deadline).ResponseAsync);
            Assert.NotEqual(StatusCode.OK, e.StatusCode);
        }
    }

    /// <summary>A self-signed ECDSA certificate for localhost and 127.0.0.1, written as PEM files the node loads.</summary>
    public static (string Cert, string Key, X509Certificate2 Certificate) SelfSigned(string dir)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));   // server auth
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        string certPath = Path.Combine(dir, "tls.crt"), keyPath = Path.Combine(dir, "tls.key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath, X509CertificateLoader.LoadCertificate(certificate.RawData));
    }
}
