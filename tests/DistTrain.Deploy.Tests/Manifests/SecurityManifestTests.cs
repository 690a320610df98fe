using System.Text;
using System.Text.RegularExpressions;
using DistTrain.Deploy.Tests.Images;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Issue #16, least privilege (docs/security.md): every container of every overlay is locked down field by field, the
/// namespace enforces the restricted Pod Security profile, and secrets reach pods only from Kubernetes Secrets.
/// </summary>
public sealed partial class SecurityManifestTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    private static IEnumerable<(string Workload, V1PodSpec Pod, V1Container Container)> Containers(Rendered r) =>
        r.PodTemplates().SelectMany(t => t.Template.Spec.Containers.Concat(t.Template.Spec.InitContainers ?? [])
            .Select(c => (t.Workload, t.Template.Spec, c)));

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_container_is_non_root_read_only_without_capabilities_under_RuntimeDefault(string kustomization)
    {
        var containers = Containers(Rendered.Of(kustomization)).ToList();
        // coordinator (+ its init container), worker, postgres, prometheus, grafana: a new workload is checked too.
        Assert.True(containers.Count >= 6, $"only {containers.Count} containers rendered");
        foreach (var (workload, pod, c) in containers)
        {
            string at = $"{workload}/{c.Name}";
            var sc = c.SecurityContext;
            Assert.NotNull(sc);
            // A container's own setting overrides the pod's, so the effective value is the container's if set.
            Assert.True((sc.RunAsNonRoot ?? pod.SecurityContext?.RunAsNonRoot) == true, $"{at}: runAsNonRoot is not true");
            Assert.True((sc.RunAsUser ?? pod.SecurityContext?.RunAsUser) is > 0, $"{at}: no fixed non-root uid");
            Assert.True(sc.ReadOnlyRootFilesystem == true, $"{at}: readOnlyRootFilesystem is not true");
            Assert.True(sc.AllowPrivilegeEscalation == false, $"{at}: allowPrivilegeEscalation is not false");
            Assert.NotEqual(true, sc.Privileged);
            Assert.Equal(["ALL"], sc.Capabilities?.Drop ?? []);
            Assert.Empty(sc.Capabilities?.Add ?? []);
            Assert.Equal("RuntimeDefault", (sc.SeccompProfile ?? pod.SecurityContext?.SeccompProfile)?.Type);
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void No_pod_shares_the_host(string kustomization)
    {
        foreach (var (workload, template, _) in Rendered.Of(kustomization).PodTemplates())
        {
            var pod = template.Spec;
            Assert.NotEqual(true, pod.HostNetwork);
            Assert.NotEqual(true, pod.HostPID);
            Assert.NotEqual(true, pod.HostIPC);
            Assert.DoesNotContain(pod.Volumes ?? [], v => v.HostPath is not null);
            Assert.DoesNotContain(pod.Containers.SelectMany(c => c.Ports ?? []), p => p.HostPort is not null);
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_nodes_temp_directory_is_a_writable_emptyDir(string kustomization)
    {
        // .NET (temp files, the diagnostics socket) and libtorch write to the temp directory: with a read-only root it
        // must be a volume. TMPDIR is not set, so the temp directory is /tmp.
        foreach (var (workload, template, _) in Rendered.Of(kustomization).PodTemplates())
        foreach (var node in Rendered.NodeContainers(template))
        {
            Assert.DoesNotContain(node.Env ?? [], e => e.Name == "TMPDIR");
            var mount = node.VolumeMounts.SingleOrDefault(m => m.MountPath == "/tmp");
            Assert.True(mount is not null, $"{workload}: nothing mounted at /tmp");
            Assert.NotEqual(true, mount.ReadOnlyProperty);
            Assert.NotNull(template.Spec.Volumes.Single(v => v.Name == mount.Name).EmptyDir);
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void The_namespace_enforces_the_restricted_pod_security_profile(string kustomization)
    {
        var labels = Rendered.Of(kustomization).One<V1Namespace>("disttrain").Metadata.Labels;
        Assert.Equal("restricted", labels["pod-security.kubernetes.io/enforce"]);
        Assert.Equal("restricted", labels["pod-security.kubernetes.io/warn"]);
        Assert.Equal("restricted", labels["pod-security.kubernetes.io/audit"]);
    }

    /// <summary>Names that say a value is a credential.</summary>
    [GeneratedRegex(@"(?i)(token|passw(or)?d|secret|credential|private|(^|[_.-])key$|apikey|pwd)")]
    private static partial Regex SecretName();

    /// <summary><c>password=…</c> (connection strings) and the like inside a value.</summary>
    [GeneratedRegex(@"(?i)\b(password|pwd|token|secret)\s*[=:]\s*([^;\s]*)")]
    private static partial Regex SecretAssignment();

    private static List<string> SecretValues(Rendered r) =>
        r.OfKind<V1Secret>().SelectMany(s => s.Data.Values).Select(v => Encoding.UTF8.GetString(v)).ToList();

    [Theory, MemberData(nameof(Kustomizations))]
    public void ConfigMaps_hold_no_secrets(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var secrets = SecretValues(r);
        var configMaps = r.OfKind<V1ConfigMap>().ToList();
        Assert.NotEmpty(configMaps);
        foreach (var map in configMaps)
        foreach (var (key, value) in map.Data ?? new Dictionary<string, string>())
        {
            Assert.False(SecretName().IsMatch(key), $"ConfigMap {map.Metadata.Name}: key {key} names a secret");
            foreach (var secret in secrets) Assert.DoesNotContain(secret, value);
            // YAML/HOCON/INI settings such as `password: x` or `token = x`; the files here have none at all.
            Assert.False(SecretAssignment().IsMatch(value), $"ConfigMap {map.Metadata.Name}/{key} sets {SecretAssignment().Match(value).Value}");
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_secret_reaching_a_container_comes_from_a_Secret(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var secrets = SecretValues(r);
        int fromSecrets = 0, secretFiles = 0;
        foreach (var (workload, pod, c) in Containers(r))
        {
            var env = c.Env ?? [];
            var fromSecret = env.Where(e => e.ValueFrom?.SecretKeyRef is not null).Select(e => e.Name).ToHashSet();
            fromSecrets += fromSecret.Count;
            foreach (var e in env)
            {
                string at = $"{workload}/{c.Name}: {e.Name}";
                foreach (var secret in secrets) Assert.DoesNotContain(secret, e.Value ?? "");
                Assert.Null(e.ValueFrom?.ConfigMapKeyRef is { } cm && SecretName().IsMatch(cm.Key) ? cm.Key : null);
                // A password inside a literal (DISTTRAIN_JOB_STORE's connection string) must be $(VAR) of a Secret.
                foreach (Match m in SecretAssignment().Matches(e.Value ?? ""))
                    Assert.True(Regex.Match(m.Groups[2].Value, @"^\$\((\w+)\)$") is { Success: true } v && fromSecret.Contains(v.Groups[1].Value),
                        $"{at}: {m.Groups[1].Value} is {m.Groups[2].Value}, not $(X) of a secretKeyRef variable");
                if (!SecretName().IsMatch(e.Name) || e.ValueFrom?.SecretKeyRef is not null) continue;
                // The only other form allowed: a path to a file mounted from a Secret (DISTTRAIN_TLS_KEY=/tls/tls.key).
                var mount = (c.VolumeMounts ?? []).Where(m => (e.Value ?? "").StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
                    .MaxBy(m => m.MountPath.Length);
                Assert.True(mount is not null && pod.Volumes.Single(v => v.Name == mount.Name).Secret is not null,
                    $"{at} carries a secret but is neither a secretKeyRef nor a path into a Secret volume");
                secretFiles++;
            }
            Assert.DoesNotContain(c.EnvFrom ?? [], f => f.ConfigMapRef is not null);
        }
        // PostgreSQL's password (twice: PostgreSQL and the coordinators) and Grafana's admin password as secretKeyRefs; the
        // API token (DISTTRAIN_API_TOKEN_FILE) and the cluster's TLS key as files of Secret volumes.
        Assert.True(fromSecrets >= 3, $"only {fromSecrets} variables come from Secrets");
        Assert.True(secretFiles >= 2, $"only {secretFiles} variables name files of Secret volumes");
    }

    [Theory]
    [InlineData("docker/cpu.Dockerfile")]
    [InlineData("docker/cuda.Dockerfile")]
    public void Images_carry_no_secrets(string path)
    {
        var dockerfile = Dockerfile.Load(Repository.PathOf(path));
        var secrets = Rendered.All.SelectMany(k => SecretValues(Rendered.Of(k))).Distinct().ToList();
        foreach (var stage in dockerfile.Stages)
        foreach (var i in stage.Instructions)
        {
            if (i.Keyword is "ENV" or "ARG")
                foreach (Match m in Regex.Matches(i.Arguments, @"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)"))
                    Assert.False(SecretName().IsMatch(m.Groups[1].Value), $"{path}: {i.Keyword} {m.Groups[1].Value} would bake a secret into the image");
            foreach (var secret in secrets) Assert.DoesNotContain(secret, i.Arguments);
        }
        // The build context is the repository (`COPY . .`): key material a developer left in it must stay out.
        var ignored = File.ReadAllLines(Repository.PathOf(".dockerignore")).Select(l => l.Trim()).ToHashSet();
        foreach (var pattern in new[] { "**/*.pem", "**/*.key", "**/*.pfx", "**/*.p12", "**/.env" })
            Assert.Contains(pattern, ignored);
    }
}
