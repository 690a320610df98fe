using DistTrain.Cluster.Hosting;
using DistTrain.Deploy.Tests.Images;
using YamlDotNet.RepresentationModel;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Issue #16, authenticated membership (docs/security.md): every node pod of every overlay gets its remoting
/// certificate, key and CA from the Secret disttrain-cluster-tls (never the image or a ConfigMap), and the cert-manager
/// component issues exactly that Secret, for TLS clients and servers, from a CA whose key no pod mounts.
/// </summary>
public sealed class ClusterTlsManifestTests
{
    public const string Secret = "disttrain-cluster-tls";
    public const string MountPath = "/etc/disttrain/tls";

    public static TheoryData<string> Kustomizations => new(Rendered.All);

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_node_reads_its_remoting_certificate_from_the_secret_mounted_read_only(string kustomization)
    {
        int nodes = 0;
        foreach (var (workload, template, _) in Rendered.Of(kustomization).PodTemplates())
        foreach (var node in Rendered.NodeContainers(template))
        {
            nodes++;
            var env = (node.Env ?? []).ToDictionary(e => e.Name, e => e.Value);
            Assert.False(env.ContainsKey(EnvironmentVariables.ClusterTls), $"{workload}: {EnvironmentVariables.ClusterTls} is set (plaintext remoting)");
            Assert.Equal($"{MountPath}/tls.crt", env[EnvironmentVariables.ClusterTlsCertificate]);
            Assert.Equal($"{MountPath}/tls.key", env[EnvironmentVariables.ClusterTlsKey]);
            Assert.Equal($"{MountPath}/ca.crt", env[EnvironmentVariables.ClusterTlsAuthority]);

            var mount = node.VolumeMounts.SingleOrDefault(m => m.MountPath == MountPath);
            Assert.True(mount is not null, $"{workload}: nothing mounted at {MountPath}");
            Assert.True(mount.ReadOnlyProperty, $"{workload}: {MountPath} is writable");
            var volume = template.Spec.Volumes.Single(v => v.Name == mount.Name);
            Assert.True(volume.Secret is not null, $"{workload}: {MountPath} is not a Secret volume");
            Assert.Equal(Secret, volume.Secret.SecretName);
            // The key is readable by the node's group (fsGroup) at most, never by other users.
            Assert.Equal(0, (volume.Secret.DefaultMode ?? 420) & 0b000_000_111);
            Assert.Equal(10001, template.Spec.SecurityContext.FsGroup);
        }
        Assert.True(nodes >= 2, $"{kustomization}: {nodes} node containers (coordinator and worker expected)");
    }

    [Fact]
    public void The_cert_manager_component_issues_that_secret_for_clients_and_servers_from_a_CA_no_pod_mounts()
    {
        // Rendered as an overlay would use it: the cpu overlay plus the component.
        string dir = Path.Combine(AppContext.BaseDirectory, "cluster-tls-overlay");
        Directory.CreateDirectory(dir);
        string Relative(string path) => Path.GetRelativePath(dir, Repository.PathOf(path)).Replace('\\', '/');
        File.WriteAllText(Path.Combine(dir, "kustomization.yaml"), $"""
            resources:
              - {Relative(Rendered.Cpu)}
            components:
              - {Relative("k8s/components/cluster-tls")}
            """);
        string yaml = Kustomize.Render(dir);
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var objects = stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
        static string? At(YamlNode node, params string[] path)
        {
            foreach (var key in path)
            {
                if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next)) return null;
                node = next;
            }
            return (node as YamlScalarNode)?.Value;
        }
        YamlMappingNode Named(string kind, string name) => objects.Single(o => At(o, "kind") == kind && At(o, "metadata", "name") == name);

        var certificate = Named("Certificate", Secret);
        Assert.Equal("disttrain", At(certificate, "metadata", "namespace"));
        Assert.Equal(Secret, At(certificate, "spec", "secretName"));
        var usages = ((YamlSequenceNode)certificate["spec"]["usages"]).Children.Select(u => ((YamlScalarNode)u).Value).ToList();
        Assert.Contains("server auth", usages);
        Assert.Contains("client auth", usages);
        Assert.Equal("Always", At(certificate, "spec", "privateKey", "rotationPolicy"));

        // Its issuer is the cluster's own CA (a CA issuer over a Secret), itself issued as a CA.
        string issuer = At(certificate, "spec", "issuerRef", "name")!;
        Assert.Equal("Issuer", At(certificate, "spec", "issuerRef", "kind"));
        string caSecret = At(Named("Issuer", issuer), "spec", "ca", "secretName")!;
        var ca = objects.Single(o => At(o, "kind") == "Certificate" && At(o, "spec", "secretName") == caSecret);
        Assert.Equal("true", At(ca, "spec", "isCA"));

        // No pod mounts the CA's key; every node pod mounts the node Secret the component writes.
        var pods = Rendered.FromYaml("cpu", Kustomize.Render(Repository.PathOf(Rendered.Cpu))).PodTemplates().ToList();
        Assert.DoesNotContain(pods.SelectMany(p => p.Template.Spec.Volumes ?? []), v => v.Secret?.SecretName == caSecret);
        Assert.All(pods.Where(p => Rendered.NodeContainers(p.Template).Any()),
            p => Assert.Contains(p.Template.Spec.Volumes, v => v.Secret?.SecretName == Secret));
    }
}
