using System.Net;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Decides whether the NetworkPolicies of a rendering let one peer open a connection to another, by the rules of
/// the NetworkPolicy API: a pod selected by no policy of a direction is open in that direction; a selected pod admits
/// what any rule of any selecting policy allows; a connection needs the sender's egress and the receiver's ingress.
/// Pods get addresses too, so an ipBlock such as 0.0.0.0/0 matches them as most network plugins do.
/// </summary>
public sealed class Reachability(Rendered rendered)
{
    /// <summary>A pod (namespace and labels; ports by name for named policy ports) or, without a namespace, an address outside the cluster.</summary>
    public sealed record Peer(string Name, string? Namespace, IDictionary<string, string> Labels, IList<V1ContainerPort> Ports, IPAddress Address)
    {
        public static Peer External(string address) => new(address, null, new Dictionary<string, string>(), [], IPAddress.Parse(address));
        public static Peer Pod(string name, string ns, IDictionary<string, string> labels, string address = "10.244.9.9", IList<V1ContainerPort>? ports = null) =>
            new(name, ns, labels, ports ?? [], IPAddress.Parse(address));
    }

    public const string Namespace = "disttrain";

    /// <summary>The pods of each workload of the rendering, each with an address of its own.</summary>
    public IReadOnlyDictionary<string, Peer> Workloads { get; } = rendered.PodTemplates().Select((t, i) => new Peer(t.Workload, Namespace,
            t.Template.Metadata.Labels, t.Template.Spec.Containers.SelectMany(c => c.Ports ?? []).ToList(), IPAddress.Parse($"10.244.0.{i + 10}")))
        .ToDictionary(p => p.Name);

    public bool Allows(Peer from, Peer to, int port, string protocol = "TCP") =>
        Admits(from, to, port, protocol, egress: true) && Admits(to, from, port, protocol, egress: false);

    /// <summary>Whether <paramref name="self"/>'s policies of one direction let it talk with <paramref name="other"/>.</summary>
    private bool Admits(Peer self, Peer other, int port, string protocol, bool egress)
    {
        if (self.Namespace is null) return true;   // outside the cluster: none of our business
        string type = egress ? "Egress" : "Ingress";
        var policies = rendered.OfKind<V1NetworkPolicy>()
            .Where(p => (p.Metadata.NamespaceProperty ?? Namespace) == self.Namespace && Selects(p.Spec.PodSelector, self.Labels))
            // Without policyTypes a policy is an Ingress policy, and an Egress one too when it has egress rules.
            .Where(p => p.Spec.PolicyTypes?.Contains(type) ?? (type == "Ingress" || p.Spec.Egress is not null))
            .ToList();
        if (policies.Count == 0) return true;
        var destination = egress ? other : self;
        foreach (var policy in policies)
        {
            string ns = policy.Metadata.NamespaceProperty ?? Namespace;
            var rules = egress
                ? (policy.Spec.Egress ?? []).Select(r => (r.To, r.Ports))
                : (policy.Spec.Ingress ?? []).Select(r => (To: r.FromProperty, r.Ports));
            if (rules.Any(r => PortMatches(r.Ports, destination, port, protocol) && PeersMatch(r.To, other, ns))) return true;
        }
        return false;
    }

    private static bool PortMatches(IList<V1NetworkPolicyPort>? ports, Peer destination, int port, string protocol) =>
        ports is not { Count: > 0 } || ports.Any(p =>
            (p.Protocol ?? "TCP") == protocol && (p.Port?.Value is not { } value
                || (int.TryParse(value, out int n)
                    ? port == n || (p.EndPort is { } end && port > n && port <= end)
                    : destination.Ports.Any(c => c.Name == value && c.ContainerPort == port && (c.Protocol ?? "TCP") == protocol))));

    private bool PeersMatch(IList<V1NetworkPolicyPeer>? peers, Peer peer, string policyNamespace) =>
        peers is not { Count: > 0 } || peers.Any(p =>
            p.IpBlock is { } block
                ? InCidr(peer.Address, block.Cidr) && !(block.Except ?? []).Any(e => InCidr(peer.Address, e))
                : peer.Namespace is not null
                  && (p.NamespaceSelector is null ? peer.Namespace == policyNamespace : Selects(p.NamespaceSelector, NamespaceLabels(peer.Namespace)))
                  && (p.PodSelector is null || Selects(p.PodSelector, peer.Labels)));

    private IDictionary<string, string> NamespaceLabels(string name)
    {
        var labels = new Dictionary<string, string>(rendered.OfKind<V1Namespace>().SingleOrDefault(n => n.Metadata.Name == name)?.Metadata.Labels
                                                    ?? new Dictionary<string, string>());
        labels["kubernetes.io/metadata.name"] = name;   // set by the API server on every namespace
        return labels;
    }

    public static bool Selects(V1LabelSelector? selector, IDictionary<string, string>? labels)
    {
        labels ??= new Dictionary<string, string>();
        if (selector is null) return false;
        return (selector.MatchLabels ?? new Dictionary<string, string>()).All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value)
               && (selector.MatchExpressions ?? []).All(e => e.OperatorProperty switch
               {
                   "In" => labels.TryGetValue(e.Key, out var v) && e.Values.Contains(v),
                   "NotIn" => !labels.TryGetValue(e.Key, out var v) || !e.Values.Contains(v),
                   "Exists" => labels.ContainsKey(e.Key),
                   "DoesNotExist" => !labels.ContainsKey(e.Key),
                   _ => throw new InvalidOperationException($"unknown selector operator {e.OperatorProperty}"),
               });
    }

    private static bool InCidr(IPAddress address, string cidr)
    {
        var network = IPNetwork.Parse(cidr);
        return network.Contains(address);
    }
}
