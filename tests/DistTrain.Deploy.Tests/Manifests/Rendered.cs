using k8s;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>One rendered kustomization (base or an overlay) as KubernetesClient's typed objects.</summary>
public sealed class Rendered
{
    public const string Base = "k8s/base";
    public const string Cpu = "k8s/overlays/cpu";
    public const string Gpu = "k8s/overlays/gpu";
    public static readonly string[] All = [Base, Cpu, Gpu];

    private static readonly Dictionary<string, Lazy<Rendered>> Cache =
        All.ToDictionary(k => k, k => new Lazy<Rendered>(() => new Rendered(k, Kustomize.Render(Repository.PathOf(k)))));

    /// <summary>The rendering of <paramref name="kustomization"/> (one of <see cref="All"/>), made once per test run.</summary>
    public static Rendered Of(string kustomization) => Cache[kustomization].Value;

    /// <summary>A rendering made elsewhere (a test's own overlay), not cached.</summary>
    public static Rendered FromYaml(string name, string yaml) => new(name, yaml);

    public string Name { get; }
    public string Yaml { get; }
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    private Rendered(string name, string yaml)
    {
        Name = name;
        Yaml = yaml;
        // strict: a field KubernetesClient's model does not know (a typo, a wrong nesting) fails the parse.
        Objects = KubernetesYaml.LoadAllFromString(yaml, strict: true).Select(o => o as IKubernetesObject<V1ObjectMeta>
            ?? throw new InvalidOperationException($"{name}: {o.GetType().Name} is not a typed Kubernetes object")).ToList();
    }

    public IEnumerable<T> OfKind<T>() => Objects.OfType<T>();

    public T One<T>(string name) where T : IKubernetesObject<V1ObjectMeta> =>
        Objects.OfType<T>().SingleOrDefault(o => o.Metadata.Name == name)
        ?? throw new InvalidOperationException($"{Name}: no {typeof(T).Name} named {name}");

    /// <summary>A generated object (ConfigMap, Secret) by the name before kustomize's content-hash suffix.</summary>
    public T Generated<T>(string name) where T : IKubernetesObject<V1ObjectMeta> =>
        Objects.OfType<T>().SingleOrDefault(o => o.Metadata.Name == name || o.Metadata.Name.StartsWith(name + "-", StringComparison.Ordinal)
                                                 && o.Metadata.Name.Length == name.Length + 11)
        ?? throw new InvalidOperationException($"{Name}: no generated {typeof(T).Name} named {name}");

    /// <summary>Every pod template: StatefulSets and Deployments, with the workload's name.</summary>
    public IEnumerable<(string Workload, V1PodTemplateSpec Template, V1LabelSelector Selector)> PodTemplates() =>
        OfKind<V1StatefulSet>().Select(s => (s.Metadata.Name, s.Spec.Template, s.Spec.Selector))
            .Concat(OfKind<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Template, d.Spec.Selector)));

    /// <summary>The DistTrain node containers: those running the disttrain image.</summary>
    public static IEnumerable<V1Container> NodeContainers(V1PodTemplateSpec template) =>
        template.Spec.Containers.Where(c => c.Image.Split(':')[0].EndsWith("disttrain", StringComparison.Ordinal));

    public static bool Matches(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && labels is not null && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
