using DistTrain.Host;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;
using DistTrain.Cluster.Tests.Functional;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;
using AkkaCluster = Akka.Cluster.Cluster;
using ClusterEvent = Akka.Cluster.ClusterEvent;

namespace DistTrain.Cluster.Tests.Security;

/// <summary>
/// Remoting's mutual TLS between real processes on 127.0.0.1: a node in this process is the cluster; `disttrain node`
/// processes try to join it with certificates of every kind. Only the one with a valid, unrevoked certificate of the
/// cluster's CA becomes a member, and the cluster's log says why each of the others was refused.
/// </summary>
[Collection("cluster")]
public sealed class MutualTlsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Only_a_valid_certificate_of_the_cluster_CA_gets_in_and_the_cluster_logs_why_the_others_do_not()
    {
        using var root = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        using var cluster = LocalCertificateAuthority.Create("cluster CA");
        using var other = LocalCertificateAuthority.Create("someone else's CA");
        string Dir(string name) => Path.Combine(root.Path, "tls", name);

        var member = cluster.Issue(Dir("member"), "member");
        var expired = cluster.Issue(Dir("expired"), "expired-member", DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1));
        var revoked = cluster.Issue(Dir("revoked"), "revoked-member");
        var foreign = other.Issue(Dir("foreign"), "rogue-own-ca");
        string crl = Path.Combine(root.Path, "tls", "ca.crl");
        cluster.WriteRevocationList(crl, [revoked]);

        int port = LoopbackPorts.Free();
        var seedTls = cluster.Issue(Dir("seed"), "seed") with { RevocationList = crl };
        var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", port, [], [], Path.Combine(root.Path, "seed")) { ClusterTls = seedTls, PlaintextRemoting = false };
        using var seedNode = NodeComposition.Build(settings, quietHost: true);
        await seedNode.StartAsync(ct);
        var system = seedNode.Services.GetRequiredService<ActorSystem>();
        var events = Channel.CreateUnbounded<object>();
        var listener = system.ActorOf(Props.Create(() => new Listener(events.Writer)));
        system.EventStream.Subscribe(listener, typeof(Warning));
        AkkaCluster.Get(system).Subscribe(listener, ClusterEvent.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));

        using var processes = new ChildProcesses();
        string seed = settings.Address;
        void Join(string name, IReadOnlyDictionary<string, string> environment, string seedAddress)
        {
            var psi = ClusterHarness.Disttrain().StartInfo(["node", "--roles", Roles.Coordinator, "--host", "127.0.0.1", "--port", LoopbackPorts.Free().ToString(),
                "--seeds", seedAddress, "--run-root", Path.Combine(root.Path, name), "--grpc-port", "0", "--metrics-port", "0"]);
            foreach (var variable in EnvironmentVariables.All.Where(v => v.StartsWith("DISTTRAIN_CLUSTER_TLS", StringComparison.Ordinal))) psi.Environment.Remove(variable);
            foreach (var (k, v) in environment) psi.Environment[k] = v;
            processes.Start(psi, name, Path.Combine(root.Path, "logs", name + ".log"));
        }
        Join("member", member.Environment(), seed);
        Join("expired", expired.Environment(), seed);
        Join("revoked", revoked.Environment(), seed);
        Join("foreign", foreign.Environment(), seed);
        // No certificate at all: plaintext remoting dialling the TLS port.
        Join("plaintext", new Dictionary<string, string> { [EnvironmentVariables.ClusterTls] = "off" }, seed.Replace("akka.ssl.tcp://", "akka.tcp://"));

        // The cluster's own words for each refusal (the peer's certificate subject names it), and the member coming Up.
        var expected = new Dictionary<string, string>
        {
            ["CN=expired-member"] = "not valid at this time",
            ["CN=revoked-member"] = "is revoked",
            ["CN=rogue-own-ca"] = "not issued by the cluster's CA",
        };
        var seen = new HashSet<string>();
        var refusals = new List<string>();
        bool memberUp = false;
        try
        {
            while (!(memberUp && seen.Count == expected.Count))
            {
                var e = await events.Reader.ReadAsync(ct);
                if (e is ClusterEvent.MemberUp up && up.Member.Address.Port != port) memberUp = true;
                if (e is Warning { Message: var m } && m.ToString() is { } text && text.StartsWith("cluster TLS: refused", StringComparison.Ordinal))
                {
                    refusals.Add(text);
                    foreach (var (subject, reason) in expected)
                        if (text.Contains(subject) && text.Contains(reason)) seen.Add(subject);
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"member up: {memberUp}; refusals seen: {string.Join(" | ", refusals)}; logs: {Path.Combine(root.Path, "logs")}");
        }
        foreach (var r in refusals.Distinct()) output.WriteLine(r);
        // The plaintext node never gets as far as a certificate: the seed's TLS handshake fails on its first bytes, and
        // the node is told its association failed. The expired node said at its own start that it would be refused.
        await WaitForLog(Path.Combine(root.Path, "logs", "plaintext.log"), $"Association failed with akka.tcp://disttrain@127.0.0.1:{port}", ct);
        await WaitForLog(Path.Combine(root.Path, "logs", "expired.log"), "the other nodes will refuse this node's own certificate", ct);

        // Every refused node has had its chance: each was refused at least once (the plaintext one never gets as far as a
        // certificate). The membership is the seed and the member, nobody else.
        var members = AkkaCluster.Get(system).State.Members.Select(m => m.Address.Port).ToHashSet();
        Assert.Equal(2, members.Count);
        Assert.Contains(port, members);
        await seedNode.StopAsync(CancellationToken.None);
    }

    /// <summary>Waits for a line in another process's log (its output has no event to wait on); fails with the log after the deadline.</summary>
    private static async Task WaitForLog(string path, string text, CancellationToken ct)
    {
        try
        {
            while (!File.ReadAllText(path).Contains(text))
                await Task.Delay(200, ct);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{Path.GetFileName(path)} never said '{text}': {File.ReadAllText(path)}");
        }
    }

    private sealed class Listener : ReceiveActor
    {
        public Listener(ChannelWriter<object> events) => ReceiveAny(e => events.TryWrite(e));
    }
}
