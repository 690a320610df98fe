using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>Base and overlays render with kustomize, parse strictly into typed objects, and hold every part of a deployment.</summary>
public sealed class RenderingTests
{
    public static TheoryData<string> Kustomizations => new(Rendered.All);

    [Theory, MemberData(nameof(Kustomizations))]
    public void Renders_into_typed_objects_with_every_part_of_a_deployment(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        Assert.NotEmpty(r.Objects);
        Assert.All(r.Objects, o => Assert.False(string.IsNullOrEmpty(o.Metadata.Name), $"a {o.Kind} without a name"));

        // Identity and access.
        Assert.Equal("disttrain", r.One<V1Namespace>("disttrain").Metadata.Name);
        r.One<V1ServiceAccount>("disttrain");
        r.One<V1Role>("disttrain-pod-reader");
        r.One<V1RoleBinding>("disttrain-pod-reader");
        // Everything namespaced lands in the namespace.
        Assert.All(r.Objects.Where(o => o is not V1Namespace), o => Assert.Equal("disttrain", o.Metadata.NamespaceProperty));

        // Configuration, coordinators (two, so the singleton can fail over), workers, services, storage.
        r.Generated<V1ConfigMap>("disttrain-cluster-config");
        Assert.Equal(2, r.One<V1StatefulSet>("disttrain-coordinator").Spec.Replicas);
        r.One<V1StatefulSet>("disttrain-worker");
        Assert.Equal("None", r.One<V1Service>("disttrain-coordinator").Spec.ClusterIP);
        Assert.Equal("None", r.One<V1Service>("disttrain-worker").Spec.ClusterIP);
        r.One<V1Service>("disttrain-grpc");
        Assert.Contains("ReadWriteMany", r.One<V1PersistentVolumeClaim>("disttrain-shared").Spec.AccessModes);
        Assert.StartsWith("postgres:16", r.One<V1StatefulSet>("disttrain-postgres").Spec.Template.Spec.Containers.Single().Image);

        // Monitoring.
        r.Generated<V1ConfigMap>("disttrain-prometheus-config");
        r.Generated<V1ConfigMap>("disttrain-alert-rules");
        r.Generated<V1ConfigMap>("disttrain-grafana-dashboard");
    }

    [Theory, MemberData(nameof(Kustomizations))]
    public void Every_reference_to_a_generated_object_carries_its_hash_suffix(string kustomization)
    {
        var r = Rendered.Of(kustomization);
        var configMaps = r.OfKind<V1ConfigMap>().Select(c => c.Metadata.Name).ToHashSet();
        var secrets = r.OfKind<V1Secret>().Select(s => s.Metadata.Name).ToHashSet();
        foreach (var (workload, template, _) in r.PodTemplates())
        {
            foreach (var v in template.Spec.Volumes ?? [])
            {
                if (v.ConfigMap is not null) Assert.True(configMaps.Contains(v.ConfigMap.Name), $"{workload}: volume {v.Name} names a missing ConfigMap {v.ConfigMap.Name}");
                if (v.PersistentVolumeClaim is not null) r.One<V1PersistentVolumeClaim>(v.PersistentVolumeClaim.ClaimName);
            }
            foreach (var c in template.Spec.Containers.Concat(template.Spec.InitContainers ?? []))
            foreach (var e in c.Env ?? [])
                if (e.ValueFrom?.SecretKeyRef is { } s)
                {
                    Assert.True(secrets.Contains(s.Name), $"{workload}/{c.Name}: {e.Name} names a missing Secret {s.Name}");
                    Assert.Contains(s.Key, r.OfKind<V1Secret>().Single(x => x.Metadata.Name == s.Name).Data.Keys);
                }
        }
    }

    [Fact]
    public void The_cluster_config_map_is_the_cluster_config_folder()
    {
        var data = Rendered.Of(Rendered.Base).Generated<V1ConfigMap>("disttrain-cluster-config").Data;
        var files = Directory.GetFiles(Repository.PathOf("cluster-config"), "*.hocon").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(files.Keys.Order(), data.Keys.Order());
        foreach (var (name, text) in files) Assert.Equal(text, data[name]);
    }
}
