using DistTrain.Host;
using System.Text.RegularExpressions;
using DistTrain.Cluster.Hosting;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// The node containers speak the application's language: variable names from <see cref="EnvironmentVariables"/>,
/// ports from <see cref="DefaultPorts"/>, probe paths from <see cref="ManagementEndpoint"/>.
/// </summary>
public sealed partial class NodeContainerTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    private static readonly Dictionary<string, (string Variable, int Port)> NamedPorts = new()
    {
        ["remoting"] = (EnvironmentVariables.Port, DefaultPorts.Remoting),
        ["management"] = (EnvironmentVariables.ManagementPort, DefaultPorts.Management),
        ["metrics"] = (EnvironmentVariables.MetricsPort, DefaultPorts.Metrics),
        ["grpc"] = (EnvironmentVariables.GrpcPort, DefaultPorts.Grpc),
    };

    private static IEnumerable<(string Workload, V1Container Node)> Nodes(Rendered r) =>
        r.PodTemplates().SelectMany(t => Rendered.NodeContainers(t.Template).Select(c => (t.Workload, c)));

    private static Dictionary<string, V1EnvVar> Env(V1Container c) => (c.Env ?? []).ToDictionary(e => e.Name);

    [Theory, MemberData(nameof(Kustomizations))]
    public void Both_roles_run_the_node_image(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        Assert.Equal(["disttrain-coordinator", "disttrain-worker"], Nodes(r).Select(n => n.Workload).Order());
        Assert.Equal(Roles.Coordinator, Env(Nodes(r).Single(n => n.Workload == "disttrain-coordinator").Node)[EnvironmentVariables.Roles].Value);
        Assert.Equal(Roles.Worker, Env(Nodes(r).Single(n => n.Workload == "disttrain-worker").Node)[EnvironmentVariables.Roles].Value);
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_variable_is_one_the_node_reads(string kustomization)
    {
        foreach (var (workload, node) in Nodes(Rendered.Of(kustomization)))
        {
            var env = node.Env ?? [];
            Assert.Equal(env.Count, env.Select(e => e.Name).Distinct().Count());
            for (int i = 0; i < env.Count; i++)
            {
                var e = env[i];
                // $(NAME) in a value must name a variable defined before it, or Kubernetes leaves it verbatim.
                foreach (Match m in Reference().Matches(e.Value ?? ""))
                    Assert.True(env.Take(i).Any(x => x.Name == m.Groups[1].Value), $"{workload}: {e.Name} uses $({m.Groups[1].Value}) before it is defined");
                if (EnvironmentVariables.All.Contains(e.Name)) continue;
                // Anything else exists only to be spliced into a DISTTRAIN_* value (a password from a Secret).
                Assert.True(env.Any(x => EnvironmentVariables.All.Contains(x.Name) && (x.Value ?? "").Contains($"$({e.Name})")),
                    $"{workload}: {e.Name} is not a variable the node reads ({string.Join(", ", EnvironmentVariables.All)})");
            }
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Ports_are_the_defaults_and_the_variables_say_the_same(string kustomization)
    {
        foreach (var (workload, node) in Nodes(Rendered.Of(kustomization)))
        {
            var env = Env(node);
            foreach (var port in node.Ports)
            {
                Assert.True(NamedPorts.TryGetValue(port.Name, out var expected), $"{workload}: unknown port name {port.Name}");
                Assert.Equal(expected.Port, port.ContainerPort);
                Assert.True(env.TryGetValue(expected.Variable, out var variable), $"{workload}: port {port.Name} declared but {expected.Variable} unset");
                Assert.Equal(expected.Port.ToString(), variable.Value);
            }
            // Every port variable that is set is declared as a container port, so nothing listens undeclared.
            foreach (var (name, (variable, _)) in NamedPorts)
                if (env.ContainsKey(variable)) Assert.Contains(node.Ports, p => p.Name == name);
            Assert.Equal("0.0.0.0", env[EnvironmentVariables.Host].Value);
            Assert.Equal("status.podIP", env[EnvironmentVariables.PublicHost].ValueFrom.FieldRef.FieldPath);
            Assert.Equal(NodeSettings.KubernetesDiscovery, env[EnvironmentVariables.Discovery].Value);
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Coordinators_serve_the_job_api_with_a_token_and_postgres(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var node = r.One<V1StatefulSet>("disttrain-coordinator").Spec.Template.Spec.Containers.Single(c => c.Name == "node");
        var env = Env(node);
        // The token is a file of the mounted Secret (re-read on change: rotation without a restart), never a variable.
        Assert.False(env.ContainsKey(EnvironmentVariables.ApiToken));
        string tokenFile = env[EnvironmentVariables.ApiTokenFile].Value;
        var coordinator = r.One<V1StatefulSet>("disttrain-coordinator").Spec.Template.Spec;
        var mount = node.VolumeMounts.Single(m => tokenFile.StartsWith(m.MountPath + "/", StringComparison.Ordinal));
        Assert.True(mount.ReadOnlyProperty);
        var volume = coordinator.Volumes.Single(v => v.Name == mount.Name);
        Assert.Equal(r.Generated<V1Secret>("disttrain-api").Metadata.Name, volume.Secret.SecretName);
        Assert.Contains(Path.GetFileName(tokenFile), r.Generated<V1Secret>("disttrain-api").Data.Keys);
        string store = env[EnvironmentVariables.JobStore].Value;
        Assert.StartsWith("postgresql:", store);
        var parts = store["postgresql:".Length..].Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        // The connection string names the PostgreSQL Service and its port, and the password comes from the same Secret
        // PostgreSQL itself is given.
        var postgres = r.One<V1Service>(parts["Host"]);
        Assert.Equal(int.Parse(parts["Port"]), postgres.Spec.Ports.Single().Port);
        Assert.Equal("$(POSTGRES_PASSWORD)", parts["Password"]);
        var server = Env(r.One<V1StatefulSet>("disttrain-postgres").Spec.Template.Spec.Containers.Single());
        Assert.Equal(server["POSTGRES_PASSWORD"].ValueFrom.SecretKeyRef.Name, env["POSTGRES_PASSWORD"].ValueFrom.SecretKeyRef.Name);
        Assert.Equal(server["POSTGRES_USER"].Value, parts["Username"]);
        Assert.Equal(server["POSTGRES_DB"].Value, parts["Database"]);
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Probes_hit_the_management_endpoint_paths(string kustomization)
    {
        foreach (var (workload, node) in Nodes(Rendered.Of(kustomization)))
        {
            Assert.Equal(ManagementEndpoint.ReadyPath, node.ReadinessProbe.HttpGet.Path);
            Assert.Equal(ManagementEndpoint.AlivePath, node.LivenessProbe.HttpGet.Path);
            foreach (var probe in new[] { node.ReadinessProbe, node.LivenessProbe })
            {
                var port = node.Ports.Single(p => p.Name == probe.HttpGet.Port.Value);
                Assert.Equal(DefaultPorts.Management, port.ContainerPort);
            }
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Nodes_share_one_volume_for_runs_and_data_and_mount_the_cluster_config(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        foreach (var (workload, template, _) in r.PodTemplates().Where(t => Rendered.NodeContainers(t.Template).Any()))
        {
            var node = Rendered.NodeContainers(template).Single();
            var env = Env(node);
            var shared = template.Spec.Volumes.Single(v => v.PersistentVolumeClaim?.ClaimName == "disttrain-shared");
            string mount = node.VolumeMounts.Single(m => m.Name == shared.Name).MountPath;
            Assert.StartsWith(mount + "/", env[EnvironmentVariables.RunRoot].Value);
            Assert.StartsWith(mount + "/", env[EnvironmentVariables.DataRoot].Value);
            var config = template.Spec.Volumes.Single(v => v.ConfigMap?.Name.StartsWith("disttrain-cluster-config-", StringComparison.Ordinal) == true);
            // The image's executable lives in /app (docker/*.Dockerfile), and NodeHost reads cluster-config/ beside it.
            Assert.Equal("/app/cluster-config", node.VolumeMounts.Single(m => m.Name == config.Name).MountPath);
        }
    }

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex Reference();
}
