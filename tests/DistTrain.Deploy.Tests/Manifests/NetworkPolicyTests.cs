using DistTrain.Cluster.Hosting;
using k8s.Models;
using Peer = DistTrain.Deploy.Tests.Manifests.Reachability.Peer;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Issue #16, "only DistTrain's own nodes get in" (docs/security.md): the NetworkPolicies of base and both overlays,
/// first rule by rule against the exact list of paths the design opens, then as connections between the rendered pods.
/// </summary>
public sealed class NetworkPolicyTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    private const string Coordinator = "disttrain-coordinator", Worker = "disttrain-worker", Postgres = "disttrain-postgres",
        Prometheus = "disttrain-prometheus", Grafana = "disttrain-grafana";

    /// <summary>A data-plane port: listeners bind port 0, so any port the kernel may hand out.</summary>
    private const int DataPlanePort = 41234;

    [Theory, MemberData(nameof(Kustomizations))]
    public void A_default_deny_policy_isolates_every_pod_in_both_directions(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var deny = r.One<V1NetworkPolicy>("disttrain-default-deny");
        Assert.Empty(deny.Spec.PodSelector.MatchLabels ?? new Dictionary<string, string>());
        Assert.Empty(deny.Spec.PodSelector.MatchExpressions ?? []);
        Assert.Equal(["Egress", "Ingress"], deny.Spec.PolicyTypes.Order());
        Assert.Null(deny.Spec.Ingress);
        Assert.Null(deny.Spec.Egress);
        foreach (var (workload, template, _) in r.PodTemplates())
        {
            Assert.True(Reachability.Selects(deny.Spec.PodSelector, template.Metadata.Labels), $"{workload} is not selected");
            Assert.Equal(deny.Metadata.NamespaceProperty, r.OfKind<V1StatefulSet>().Cast<k8s.IKubernetesObject<V1ObjectMeta>>()
                .Concat(r.OfKind<V1Deployment>()).Single(w => w.Metadata.Name == workload).Metadata.NamespaceProperty);
        }
    }

    /// <summary>Every rule of every policy, written out: selected pods, direction, peers and ports.</summary>
    private static readonly string[] ExpectedRules =
    [
        "disttrain-coordinator-postgres [name=disttrain,component=coordinator] egress to pods[name=postgres,component=job-store] on TCP/5432",
        "disttrain-dns [*] egress to ns[kubernetes.io/metadata.name=kube-system]/pods[k8s-app=kube-dns] on UDP/53,TCP/53",
        "disttrain-grafana [name=grafana] egress to pods[name=prometheus] on TCP/9090",
        // The overlay's gRPC source; by default any pod of the namespace (docs/security.md, "Opening the job API").
        "disttrain-grpc [name=disttrain,component=coordinator] ingress from pods[*] on TCP/grpc",
        "disttrain-grpc-clients [*] egress to pods[name=disttrain,component=coordinator] on TCP/50051",
        // Node to node on every TCP port: remoting, management and the data plane's dynamic ports.
        "disttrain-nodes [name=disttrain] egress to 0.0.0.0/0 on TCP/443,TCP/6443",
        "disttrain-nodes [name=disttrain] egress to pods[name=disttrain] on TCP/*",
        "disttrain-nodes [name=disttrain] ingress from pods[name=disttrain] on TCP/*",
        "disttrain-nodes [name=disttrain] ingress from pods[name=prometheus] on TCP/metrics",
        "disttrain-postgres [name=postgres,component=job-store] ingress from pods[name=disttrain,component=coordinator] on TCP/postgres",
        "disttrain-prometheus [name=prometheus] egress to 0.0.0.0/0 on TCP/443,TCP/6443",
        "disttrain-prometheus [name=prometheus] egress to pods[name=disttrain] on TCP/9464",
        "disttrain-prometheus [name=prometheus] ingress from pods[name=grafana] on TCP/http",
    ];

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_policies_open_exactly_the_designed_paths(string kustomization)
    {
        var rules = Rendered.Of(kustomization).OfKind<V1NetworkPolicy>().SelectMany(p =>
            (p.Spec.Ingress ?? []).Select(i => Rule(p, "ingress from", i.FromProperty, i.Ports))
            .Concat((p.Spec.Egress ?? []).Select(e => Rule(p, "egress to", e.To, e.Ports))));
        Assert.Equal(ExpectedRules.Order(StringComparer.Ordinal), rules.Order(StringComparer.Ordinal));
    }

    private static string Rule(V1NetworkPolicy p, string direction, IList<V1NetworkPolicyPeer>? peers, IList<V1NetworkPolicyPort>? ports) =>
        $"{p.Metadata.Name} [{Selector(p.Spec.PodSelector)}] {direction} {(peers is { Count: > 0 } ? string.Join(" | ", peers.Select(PeerText)) : "anywhere")} on " +
        (ports is { Count: > 0 } ? string.Join(",", ports.Select(x => $"{x.Protocol ?? "TCP"}/{x.Port?.Value ?? "*"}{(x.EndPort is { } e ? "-" + e : "")}")) : "any port");

    private static string PeerText(V1NetworkPolicyPeer p) =>
        p.IpBlock is { } b ? b.Cidr + (b.Except is { Count: > 0 } ? " except " + string.Join(",", b.Except) : "")
        : (p.NamespaceSelector is { } ns ? $"ns[{Selector(ns, shorten: false)}]/" : "") + (p.PodSelector is { } pods ? $"pods[{Selector(pods)}]" : "pods[*]");

    private static string Selector(V1LabelSelector s, bool shorten = true)
    {
        Assert.Empty(s.MatchExpressions ?? []);   // the policies use matchLabels only, which this text shows in full
        var labels = (s.MatchLabels ?? new Dictionary<string, string>())
            .OrderBy(kv => kv.Key == "app.kubernetes.io/name" ? 0 : 1).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{(shorten ? kv.Key.Replace("app.kubernetes.io/", "") : kv.Key)}={kv.Value}").ToList();
        return labels.Count == 0 ? "*" : string.Join(",", labels);
    }

    public static TheoryData<string, string, string, int, string, bool> Connections()
    {
        var data = new TheoryData<string, string, string, int, string, bool>();
        foreach (var k in Rendered.All)
        {
            // Same release, node to node: remoting, management (bootstrap probes), the data plane, both roles both ways.
            foreach (var (from, to) in new[] { (Worker, Coordinator), (Coordinator, Worker), (Worker, Worker), (Coordinator, Coordinator) })
            foreach (int port in new[] { DefaultPorts.Remoting, DefaultPorts.Management, DataPlanePort })
                data.Add(k, from, to, port, "TCP", true);
            // Metrics: Prometheus only.
            data.Add(k, Prometheus, Worker, DefaultPorts.Metrics, "TCP", true);
            data.Add(k, Prometheus, Coordinator, DefaultPorts.Metrics, "TCP", true);
            data.Add(k, Grafana, Worker, DefaultPorts.Metrics, "TCP", false);
            data.Add(k, Postgres, Coordinator, DefaultPorts.Metrics, "TCP", false);
            data.Add(k, "monitoring/prometheus", Worker, DefaultPorts.Metrics, "TCP", false);
            data.Add(k, Prometheus, Worker, DefaultPorts.Remoting, "TCP", false);
            data.Add(k, Prometheus, Coordinator, DefaultPorts.Grpc, "TCP", true);   // like any pod of the namespace
            // gRPC: from the namespace (the overlay's default), nowhere else; workers serve none.
            data.Add(k, "disttrain/debug", Coordinator, DefaultPorts.Grpc, "TCP", true);
            data.Add(k, "other/client", Coordinator, DefaultPorts.Grpc, "TCP", false);
            data.Add(k, "203.0.113.7", Coordinator, DefaultPorts.Grpc, "TCP", false);
            // Strangers reach no node port; an unlabelled pod of the namespace only the job API.
            foreach (int port in new[] { DefaultPorts.Remoting, DefaultPorts.Management, DefaultPorts.Metrics, DataPlanePort })
            {
                data.Add(k, "disttrain/debug", Worker, port, "TCP", false);
                data.Add(k, "other/client", Coordinator, port, "TCP", false);
                data.Add(k, Postgres, Worker, port, "TCP", false);
                data.Add(k, Grafana, Coordinator, port, "TCP", false);
            }
            // PostgreSQL: coordinators only.
            data.Add(k, Coordinator, Postgres, 5432, "TCP", true);
            data.Add(k, Worker, Postgres, 5432, "TCP", false);
            data.Add(k, Prometheus, Postgres, 5432, "TCP", false);
            data.Add(k, "disttrain/debug", Postgres, 5432, "TCP", false);
            // Grafana reads Prometheus; no one else does, and no one reaches Grafana but through port-forward.
            data.Add(k, Grafana, Prometheus, 9090, "TCP", true);
            data.Add(k, Worker, Prometheus, 9090, "TCP", false);
            data.Add(k, "disttrain/debug", Grafana, 3000, "TCP", false);
            // Egress: DNS for everyone; the Kubernetes API for the nodes and Prometheus; nothing else leaves.
            foreach (var w in new[] { Coordinator, Worker, Postgres, Prometheus, Grafana })
            {
                data.Add(k, w, "kube-system/kube-dns", 53, "UDP", true);
                data.Add(k, w, "kube-system/kube-dns", 53, "TCP", true);
                data.Add(k, w, "kube-system/other", 53, "UDP", false);
                data.Add(k, w, "10.96.0.1", 443, "TCP", w is Coordinator or Worker or Prometheus);
                data.Add(k, w, "10.0.0.2", 6443, "TCP", w is Coordinator or Worker or Prometheus);
                data.Add(k, w, "203.0.113.7", 80, "TCP", false);
                // The API rule's placeholder (0.0.0.0/0) lets the same pods out on 443 anywhere until an overlay narrows it.
                data.Add(k, w, "203.0.113.7", 443, "TCP", w is Coordinator or Worker or Prometheus);
                data.Add(k, w, "other/client", 8080, "TCP", false);
            }
        }
        return data;
    }

    [Theory, MemberData(nameof(Connections))]
    public void Connection(string kustomization, string from, string to, int port, string protocol, bool allowed)
    {
        var reach = new Reachability(Rendered.Of(kustomization));
        Assert.Equal(allowed, reach.Allows(PeerOf(reach, from), PeerOf(reach, to), port, protocol));
    }

    /// <summary>
    /// The overlay patches docs/security.md shows (open the job API to an ingress controller and a network, narrow the
    /// Kubernetes API rule, point metrics at another namespace's Prometheus) still hit the rules they mean: they
    /// address rules by index, so reordering a policy would silently retarget them.
    /// </summary>
    [Fact]
    public void The_documented_overlay_patches_change_only_what_they_say()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "patched-overlay");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "kustomization.yaml"), """
            resources:
              - CPU_OVERLAY
            patches:
              - target: {kind: NetworkPolicy, name: disttrain-grpc}
                patch: |
                  - op: replace
                    path: /spec/ingress/0/from
                    value:
                      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
                        podSelector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}
                      - ipBlock: {cidr: 192.0.2.0/24}
              - target: {kind: NetworkPolicy, name: disttrain-nodes}
                patch: |
                  - {op: replace, path: /spec/egress/1/to, value: [{ipBlock: {cidr: 10.0.0.2/32}}]}
                  - op: replace
                    path: /spec/ingress/1/from
                    value: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]
              - target: {kind: NetworkPolicy, name: disttrain-prometheus}
                patch: |
                  - {op: replace, path: /spec/egress/1/to, value: [{ipBlock: {cidr: 10.0.0.2/32}}]}
            """.Replace("CPU_OVERLAY", Path.GetRelativePath(dir, Repository.PathOf(Rendered.Cpu)).Replace('\\', '/')));
        var reach = new Reachability(Rendered.FromYaml("patched", Kustomize.Render(dir)));
        var ingressNginx = Peer.Pod("ingress-nginx/controller", "ingress-nginx", new Dictionary<string, string> { ["app.kubernetes.io/name"] = "ingress-nginx" });
        var monitoring = Peer.Pod("monitoring/prometheus", "monitoring", new Dictionary<string, string> { ["app.kubernetes.io/name"] = "prometheus" });
        var coordinator = reach.Workloads[Coordinator];
        var worker = reach.Workloads[Worker];

        Assert.True(reach.Allows(ingressNginx, coordinator, DefaultPorts.Grpc));
        Assert.True(reach.Allows(Peer.External("192.0.2.40"), coordinator, DefaultPorts.Grpc));
        Assert.False(reach.Allows(PeerOf(reach, "disttrain/debug"), coordinator, DefaultPorts.Grpc));   // the default source is replaced
        Assert.False(reach.Allows(ingressNginx, coordinator, DefaultPorts.Remoting));
        Assert.True(reach.Allows(monitoring, worker, DefaultPorts.Metrics));
        Assert.False(reach.Allows(reach.Workloads[Prometheus], worker, DefaultPorts.Metrics));
        Assert.False(reach.Allows(monitoring, worker, DefaultPorts.Remoting));
        Assert.True(reach.Allows(worker, Peer.External("10.0.0.2"), 6443));
        Assert.False(reach.Allows(worker, Peer.External("10.96.0.1"), 443));
        Assert.True(reach.Allows(reach.Workloads[Prometheus], Peer.External("10.0.0.2"), 443));
        Assert.True(reach.Allows(worker, coordinator, DataPlanePort));   // the mesh is untouched
    }

    /// <summary>A workload's pods, "namespace/name" for another pod, or an address outside the cluster.</summary>
    private static Peer PeerOf(Reachability reach, string name)
    {
        if (reach.Workloads.TryGetValue(name, out var pod)) return pod;
        return name switch
        {
            "disttrain/debug" => Peer.Pod(name, Reachability.Namespace, new Dictionary<string, string> { ["run"] = "debug" }),
            "other/client" => Peer.Pod(name, "other", new Dictionary<string, string> { ["app"] = "client" }),
            // A Prometheus of another namespace carrying our Prometheus's labels: namespaces are part of the rule.
            "monitoring/prometheus" => Peer.Pod(name, "monitoring", new Dictionary<string, string> { ["app.kubernetes.io/name"] = "prometheus" }),
            "kube-system/kube-dns" => Peer.Pod(name, "kube-system", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" }),
            "kube-system/other" => Peer.Pod(name, "kube-system", new Dictionary<string, string> { ["app"] = "other" }),
            _ => Peer.External(name),
        };
    }
}
