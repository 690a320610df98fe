using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// A private routed network for partition tests, made with iproute2 alone: one network namespace per node, each on its
/// own /24 behind a veth pair to a router namespace (10.231.N.2, router 10.231.N.1), and one veth pair from this
/// process's namespace to the router (10.231.0.2, with a route to 10.231.0.0/16) so the test reaches the job API. No
/// existing interface, address or route of the host is touched.
/// <para>
/// Cuts are policy-routing rules in the router (<c>ip rule add from A to B blackhole</c>): a forwarded packet that
/// matches is dropped without an ICMP error, so both ends see silence, as behind a failed switch port or a firewall
/// that drops. A rule is one-way; a two-way cut is two rules. (A <c>blackhole</c> route inside a node's own namespace
/// would instead fail local sends at once with EINVAL, and a link taken down would show the node a lost carrier;
/// tc's drop actions and netfilter are not available in every kernel this runs on: this machine's has neither
/// <c>act_gact</c> nor iptables.)
/// </para>
/// Disposing deletes every namespace (which destroys their veths, the host's end, and its route) even after a failure.
/// </summary>
public sealed class NetworkNamespaces : IDisposable
{
    private const string Prefix = "10.231";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);
    private readonly string _tag = $"dt{Environment.ProcessId}";
    private readonly List<string> _namespaces = new();
    private readonly List<int> _rules = new();
    private int _nextRule = 1000;

    private string Router => _tag + "r";
    private string HostLink => _tag + "h";
    public string NamespaceOf(int node) => $"{_tag}n{node}";
    /// <summary>Node <paramref name="node"/>'s address inside its namespace.</summary>
    public static string Address(int node) => $"{Prefix}.{node + 1}.2";
    /// <summary>This process's end of its link to the router.</summary>
    public const string HostAddress = Prefix + ".0.2";

    /// <summary>Why network namespaces cannot be made here, or null when they can (Linux, root with CAP_NET_ADMIN and CAP_SYS_ADMIN, iproute2).</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (geteuid() != 0) return "partition tests make network namespaces and need root (run as root, e.g. in CI)";
        // CapEff bit 12 is CAP_NET_ADMIN (links, addresses, rules), bit 21 CAP_SYS_ADMIN (`ip netns` mounts the namespace).
        string? caps = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        if (caps is null || !ulong.TryParse(caps[7..].Trim(), System.Globalization.NumberStyles.HexNumber, null, out ulong eff))
            return "cannot read this process's capabilities from /proc/self/status";
        if ((eff & (1UL << 12)) == 0) return "this process lacks CAP_NET_ADMIN (a container without --cap-add NET_ADMIN?)";
        if ((eff & (1UL << 21)) == 0) return "this process lacks CAP_SYS_ADMIN, which `ip netns` needs to mount a namespace";
        if (FindOnPath("ip") is null) return "iproute2's `ip` is not installed (Debian: apt-get install iproute2)";
        return null;
    }

    /// <summary>Makes the router, <paramref name="nodes"/> node namespaces and the host link; undoes everything if a step fails.</summary>
    public static NetworkNamespaces Create(int nodes)
    {
        var net = new NetworkNamespaces();
        try
        {
            net.Build(nodes);
            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private void Build(int nodes)
    {
        ClearLeftovers();
        // Refuse rather than shadow a network this host already uses.
        var routes = Ip("-4 route show");
        if (routes.Split('\n').Any(l => l.StartsWith(Prefix + ".", StringComparison.Ordinal)))
            throw new InvalidOperationException($"the host already routes {Prefix}.0.0/16; the partition tests will not shadow it:\n{routes}");
        AddNamespace(Router);
        // The router forwards between the node links; a namespace starts with forwarding off.
        Run(IpPath, $"netns exec {Router} sh -c \"echo 1 > /proc/sys/net/ipv4/ip_forward\"");
        Ip($"link add name {HostLink} type veth peer name rhost netns {Router}");
        Ip($"addr add {HostAddress}/24 dev {HostLink}");
        Ip($"link set dev {HostLink} up");
        Ip($"-n {Router} addr add {Prefix}.0.1/24 dev rhost");
        Ip($"-n {Router} link set dev rhost up");
        Ip($"route add {Prefix}.0.0/16 via {Prefix}.0.1 dev {HostLink}");
        for (int i = 0; i < nodes; i++)
        {
            string ns = NamespaceOf(i);
            AddNamespace(ns);
            Ip($"-n {Router} link add name rn{i} type veth peer name eth0 netns {ns}");
            Ip($"-n {Router} addr add {Prefix}.{i + 1}.1/24 dev rn{i}");
            Ip($"-n {Router} link set dev rn{i} up");
            Ip($"-n {ns} addr add {Address(i)}/24 dev eth0");
            Ip($"-n {ns} link set dev eth0 up");
            Ip($"-n {ns} route add default via {Prefix}.{i + 1}.1");
        }
    }

    /// <summary>
    /// Deletes what a test process that no longer runs left behind (killed with SIGKILL, its Dispose never ran): its
    /// namespaces (named dt&lt;pid&gt;…), the processes still inside them, and its host link. A live process's are left alone.
    /// </summary>
    private static void ClearLeftovers()
    {
        var names = Ip("netns list").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]);
        foreach (var name in names)
        {
            var m = System.Text.RegularExpressions.Regex.Match(name, @"^dt(\d+)(r|n\d+)$");
            if (!m.Success || !int.TryParse(m.Groups[1].Value, out int pid) || Directory.Exists($"/proc/{pid}")) continue;
            foreach (var line in Ip($"netns pids {name}").Split('\n', StringSplitOptions.RemoveEmptyEntries))
                if (int.TryParse(line.Trim(), out int orphan))
                    try { using var p = Process.GetProcessById(orphan); p.Kill(); p.WaitForExit(CommandTimeout); }
                    catch (ArgumentException) { }   // already gone
            Ip($"netns del {name}");
            // Goes with the router's namespace; deleted here in case that is not yet done (a failure means it is gone).
            Run(IpPath, $"link del dev dt{pid}h", check: false);
        }
    }

    private void AddNamespace(string name)
    {
        Ip($"netns add {name}");
        _namespaces.Add(name);
        Ip($"-n {name} link set dev lo up");
    }

    /// <summary>A start of <paramref name="psi"/> inside node <paramref name="node"/>'s namespace (`ip netns exec` execs it, so the process is the command itself).</summary>
    public ProcessStartInfo Inside(int node, ProcessStartInfo psi)
    {
        var wrapped = new ProcessStartInfo(IpPath) { UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", NamespaceOf(node), psi.FileName }.Concat(psi.ArgumentList)) wrapped.ArgumentList.Add(a);
        foreach (var (k, v) in psi.Environment) wrapped.Environment[k] = v;
        return wrapped;
    }

    /// <summary>Drops every packet from node <paramref name="from"/> to node <paramref name="to"/> (one way).</summary>
    public void CutOneWay(int from, int to) => AddRule($"from {Address(from)} to {Address(to)}");

    /// <summary>Drops every packet between two nodes, both ways.</summary>
    public void Cut(int a, int b)
    {
        CutOneWay(a, b);
        CutOneWay(b, a);
    }

    /// <summary>Cuts a node off from every other node and from the host, both ways.</summary>
    public void Isolate(int node)
    {
        AddRule($"from {Address(node)}");
        AddRule($"to {Address(node)}");
    }

    /// <summary>Removes every cut.</summary>
    public void Heal()
    {
        foreach (int priority in _rules) Ip($"-n {Router} rule del priority {priority}");
        _rules.Clear();
    }

    private void AddRule(string selector)
    {
        int priority = _nextRule++;
        Ip($"-n {Router} rule add {selector} blackhole priority {priority}");
        _rules.Add(priority);
    }

    public void Dispose()
    {
        // Deleting a namespace destroys the veths in it, and with the router's goes the host's end and its route.
        var problems = new List<string>();
        foreach (var ns in Enumerable.Reverse(_namespaces))
            try { Ip($"netns del {ns}"); } catch (InvalidOperationException e) { problems.Add(e.Message); }
        _namespaces.Clear();
        // The kernel tears a deleted namespace down after `netns del` returns, so the host's end may vanish between a
        // look and a delete (CI, 2026-12-05: "Cannot find device"): only a link that is still there is a problem.
        bool HostLinkExists() => Run(IpPath, $"link show dev {HostLink}", check: false).ExitCode == 0;
        if (HostLinkExists() && Run(IpPath, $"link del dev {HostLink}", check: false).ExitCode != 0 && HostLinkExists())
            problems.Add($"the host link {HostLink} could not be deleted");
        if (problems.Count > 0) throw new InvalidOperationException("cleaning up network namespaces: " + string.Join("; ", problems));
    }

    private static string Ip(string arguments) => Run(IpPath, arguments).Output;

    /// <summary>iproute2's <c>ip</c>; also looked for in the sbin folders, which a non-login PATH may lack.</summary>
    private static readonly string IpPath = FindOnPath("ip") ?? "ip";

    private static (int ExitCode, string Output) Run(string file, string arguments, bool check = true)
    {
        var psi = new ProcessStartInfo(file, arguments) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(CommandTimeout))
        {
            p.Kill();
            throw new InvalidOperationException($"`{file} {arguments}` did not finish within {CommandTimeout.TotalSeconds:F0} s");
        }
        p.WaitForExit();
        if (check && p.ExitCode != 0)
            throw new InvalidOperationException($"`{file} {arguments}` failed ({p.ExitCode}): {stderr.Result.Trim()}");
        return (p.ExitCode, stdout.Result);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin"]).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [DllImport("libc")]
    private static extern uint geteuid();
}

/// <summary>
/// A fact that needs <see cref="NetworkNamespaces"/>: skipped, saying why, where the process lacks the privileges or
/// iproute2. When they are present, a failure to build the network fails the test (CI runs as root).
/// </summary>
public sealed class RequiresNetworkNamespacesFactAttribute : FactAttribute
{
    public RequiresNetworkNamespacesFactAttribute()
    {
        if (NetworkNamespaces.Unavailable() is { } reason) Skip = reason;
    }
}
