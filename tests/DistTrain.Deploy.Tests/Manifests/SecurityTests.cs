using System.Text;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>Nothing runs as root, and no real secret is committed.</summary>
public sealed class SecurityTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    [Theory, MemberData(nameof(Kustomizations))]
    public void No_container_runs_as_root_or_can_become_root(string kustomization)
    {
        foreach (var (workload, template, _) in Rendered.Of(kustomization).PodTemplates())
        {
            var pod = template.Spec.SecurityContext;
            Assert.True(pod?.RunAsNonRoot == true, $"{workload}: runAsNonRoot is not set on the pod");
            foreach (var c in template.Spec.Containers.Concat(template.Spec.InitContainers ?? []))
            {
                long? user = c.SecurityContext?.RunAsUser ?? pod.RunAsUser;
                Assert.True(user is > 0, $"{workload}/{c.Name}: runs as user {user?.ToString() ?? "of the image"}, not a fixed non-root uid");
                Assert.False(c.SecurityContext?.RunAsNonRoot == false, $"{workload}/{c.Name}: runAsNonRoot turned off");
                Assert.False(c.SecurityContext?.Privileged == true, $"{workload}/{c.Name}: privileged");
                Assert.False(c.SecurityContext?.AllowPrivilegeEscalation ?? true, $"{workload}/{c.Name}: allowPrivilegeEscalation is not false");
                Assert.Contains("ALL", c.SecurityContext?.Capabilities?.Drop ?? []);
            }
        }
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Committed_secrets_are_placeholders(string kustomization)
    {
        var secrets = Rendered.Of(kustomization).OfKind<V1Secret>().ToList();
        Assert.NotEmpty(secrets);
        foreach (var s in secrets)
        foreach (var (key, value) in s.Data)
            Assert.StartsWith("replace-me", Encoding.UTF8.GetString(value));
    }
}
