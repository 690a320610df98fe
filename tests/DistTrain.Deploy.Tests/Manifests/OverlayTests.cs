using DistTrain.Cluster.Hosting;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>The gpu overlay gives every worker pod one GPU and the CUDA image; the cpu overlay none.</summary>
public sealed class OverlayTests
{
    private static V1Container Worker(string kustomization) =>
        Rendered.Of(kustomization).One<V1StatefulSet>("disttrain-worker").Spec.Template.Spec.Containers.Single(c => c.Name == "node");

    private static string Devices(V1Container c) => c.Env.Single(e => e.Name == EnvironmentVariables.Devices).Value;

    [Fact]
    public void Gpu_workers_request_one_gpu_each_and_use_it_as_cuda_0()
    {
        var worker = Worker(Rendered.Gpu);
        Assert.Equal("1", worker.Resources.Limits["nvidia.com/gpu"].ToString());
        Assert.Equal("1", worker.Resources.Requests["nvidia.com/gpu"].ToString());
        Assert.Equal("cuda:0", Devices(worker));
        Assert.Equal("disttrain:cuda", worker.Image);
        var tolerations = Rendered.Of(Rendered.Gpu).One<V1StatefulSet>("disttrain-worker").Spec.Template.Spec.Tolerations;
        Assert.Contains(tolerations, t => t.Key == "nvidia.com/gpu");
        // Only workers hold GPUs.
        foreach (var (workload, template, _) in Rendered.Of(Rendered.Gpu).PodTemplates().Where(t => t.Workload != "disttrain-worker"))
            Assert.All(template.Spec.Containers, c => Assert.False(c.Resources?.Limits?.ContainsKey("nvidia.com/gpu") ?? false, $"{workload} asks for a GPU"));
    }

    [Fact]
    public void Cpu_workers_ask_for_no_gpu()
    {
        var r = Rendered.Of(Rendered.Cpu);
        Assert.DoesNotContain("nvidia.com/gpu", r.Yaml);
        Assert.Equal("cpu", Devices(Worker(Rendered.Cpu)));
        Assert.Equal("disttrain:cpu", Worker(Rendered.Cpu).Image);
    }

    [Theory]
    [InlineData(Rendered.Cpu)]
    [InlineData(Rendered.Gpu)]
    public void Overlays_change_only_the_workers_and_the_image(string overlay)
    {
        var b = Rendered.Of(Rendered.Base);
        var o = Rendered.Of(overlay);
        Assert.Equal(b.Objects.Select(x => (x.Kind, x.Metadata.Name)).Order(), o.Objects.Select(x => (x.Kind, x.Metadata.Name)).Order());
        var coordinator = o.One<V1StatefulSet>("disttrain-coordinator").Spec.Template.Spec.Containers.Single(c => c.Name == "node");
        Assert.Equal(overlay == Rendered.Gpu ? "disttrain:cuda" : "disttrain:cpu", coordinator.Image);
    }
}
