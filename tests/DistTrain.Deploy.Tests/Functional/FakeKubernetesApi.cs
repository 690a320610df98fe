using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DistTrain.Cluster.Hosting;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DistTrain.Deploy.Tests.Functional;

/// <summary>
/// The one Kubernetes API call cluster bootstrap makes — list the pods of a namespace by label selector — served over
/// HTTPS on 127.0.0.1 from a fixed set of pods, with a self-signed certificate written as the service account's
/// ca.crt. There is no Kubernetes cluster on the project's machines; this lets a real node discover real peers.
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    /// <summary>Every pod-list request: namespace, label selector, Authorization header.</summary>
    public ConcurrentQueue<(string Namespace, string? LabelSelector, string? Authorization)> Requests { get; } = new();
    public int Port { get; }
    public string CaPem { get; }

    private FakeKubernetesApi(IReadOnlyList<V1Pod> pods, X509Certificate2 certificate, int port)
    {
        Port = port;
        CaPem = certificate.ExportCertificatePem();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, o => o.UseHttps(certificate)));
        _app = builder.Build();
        _app.MapGet("/api/v1/namespaces/{ns}/pods", (string ns, HttpRequest request) =>
        {
            string? selector = request.Query["labelSelector"];
            Requests.Enqueue((ns, selector, request.Headers.Authorization.ToString()));
            var matching = pods.Where(p => p.Metadata.NamespaceProperty == ns && Selects(selector, p.Metadata.Labels)).ToList();
            return Results.Content(KubernetesJson.Serialize(new V1PodList { ApiVersion = "v1", Kind = "PodList", Items = matching, Metadata = new V1ListMeta() }), "application/json");
        });
    }

    public static async Task<FakeKubernetesApi> StartAsync(IReadOnlyList<V1Pod> pods)
    {
        var api = new FakeKubernetesApi(pods, SelfSigned(), LoopbackPorts.Free());
        await api._app.StartAsync();
        return api;
    }

    /// <summary>Equality-based selectors (<c>k=v,k2=v2</c>), the only kind bootstrap sends.</summary>
    private static bool Selects(string? selector, IDictionary<string, string>? labels) =>
        string.IsNullOrEmpty(selector) || selector.Split(',').Select(t => t.Split('=', 2)).All(kv =>
            labels is not null && labels.TryGetValue(kv[0].Trim(), out var v) && v == kv[1].Trim());

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=kubernetes", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // Kestrel needs the private key in an exportable store form.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
