using DistTrain.Host;
using System.Net;
using System.Text.Json;
using DistTrain.Cluster.Hosting;
using DistTrain.Deploy.Tests.Manifests;
using k8s;
using k8s.Models;

namespace DistTrain.Deploy.Tests.Functional;

/// <summary>
/// Two coordinator nodes started as the manifests start them (DISTTRAIN_DISCOVERY=kubernetes, no seeds) form one
/// cluster by themselves: Akka.Management bootstrap with cluster-config/k8s.hocon asks the Kubernetes API for the pods,
/// with the service account's token, namespace and CA, probes each pod's management port and joins. The API is
/// <see cref="FakeKubernetesApi"/> serving the pods of the rendered manifests (and a PostgreSQL pod the selector must
/// leave out); each node sees its service-account files at the in-pod path through a private mount namespace.
/// </summary>
public sealed class KubernetesBootstrapTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    /// <summary>A running pod of <paramref name="set"/>'s template, on 127.0.0.1, its management port moved to <paramref name="managementPort"/>.</summary>
    private static V1Pod Pod(V1StatefulSet set, int ordinal, int? managementPort)
    {
        var template = KubernetesJson.Deserialize<V1PodTemplateSpec>(KubernetesJson.Serialize(set.Spec.Template));
        foreach (var port in template.Spec.Containers.SelectMany(c => c.Ports ?? []).Where(p => p.Name == "management"))
            port.ContainerPort = managementPort ?? throw new InvalidOperationException("a node pod needs its management port");
        return new V1Pod
        {
            ApiVersion = "v1", Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = $"{set.Metadata.Name}-{ordinal}", NamespaceProperty = set.Metadata.NamespaceProperty, Labels = template.Metadata.Labels },
            Spec = template.Spec,
            Status = new V1PodStatus { Phase = "Running", PodIP = "127.0.0.1" },
        };
    }

    [Fact]
    public async Task Coordinators_form_one_cluster_through_the_kubernetes_api()
    {
        Assert.True(Environment.IsPrivilegedProcess, "this test gives each node a private /run (unshare --mount), which needs root, as the project's machines and CI have");
        var rendered = Rendered.Of(Rendered.Gpu);
        var coordinators = rendered.One<V1StatefulSet>("disttrain-coordinator");
        int[] managementPorts = [LoopbackPorts.Free(), LoopbackPorts.Free()];
        var pods = new List<V1Pod> { Pod(rendered.One<V1StatefulSet>("disttrain-postgres"), 0, null) };
        pods.AddRange(managementPorts.Select((port, i) => Pod(coordinators, i, port)));
        Assert.Equal(coordinators.Spec.Replicas, managementPorts.Length);

        await using var api = await FakeKubernetesApi.StartAsync(pods);
        using var nodes = new NodeProcesses();
        string serviceAccount = Path.Combine(nodes.Root, "serviceaccount");
        Directory.CreateDirectory(serviceAccount);
        string token = Convert.ToHexString(Guid.NewGuid().ToByteArray());
        File.WriteAllText(Path.Combine(serviceAccount, "token"), token);
        File.WriteAllText(Path.Combine(serviceAccount, "namespace"), coordinators.Metadata.NamespaceProperty);
        File.WriteAllText(Path.Combine(serviceAccount, "ca.crt"), api.CaPem);
        // What the manifests set for discovery, and what Kubernetes sets in every pod.
        var podEnv = coordinators.Spec.Template.Spec.Containers.Single(c => c.Name == "node").Env;
        var environment = new Dictionary<string, string>
        {
            [EnvironmentVariables.Discovery] = podEnv.Single(e => e.Name == EnvironmentVariables.Discovery).Value,
            ["KUBERNETES_SERVICE_HOST"] = "127.0.0.1",
            ["KUBERNETES_SERVICE_PORT"] = api.Port.ToString(),
        };
        var urls = managementPorts.Select((port, i) => nodes.StartCoordinator($"coordinator-{i}", seeds: [], environment, serviceAccount, port)).ToList();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + Deadline;
        foreach (var url in urls)
            await Poll(http, new Uri(url, ManagementEndpoint.ReadyPath), deadline, nodes);

        // One cluster of both, not two clusters of one.
        foreach (var url in urls)
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri(url, ManagementEndpoint.SeedNodesPath)));
            Assert.Equal(2, doc.RootElement.GetProperty("Nodes").GetArrayLength());
        }
        // Discovery asked for the node pods of the pod's own namespace, as the service account.
        Assert.NotEmpty(api.Requests);
        Assert.All(api.Requests, r =>
        {
            Assert.Equal(coordinators.Metadata.NamespaceProperty, r.Namespace);
            Assert.Equal("app.kubernetes.io/name=disttrain", r.LabelSelector);
            Assert.Equal($"Bearer {token}", r.Authorization);
        });
    }

    private static async Task Poll(HttpClient http, Uri uri, DateTime deadline, NodeProcesses nodes)
    {
        string last = "no answer";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(uri);
                if (response.StatusCode == HttpStatusCode.OK) return;
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException e) { last = e.Message; }
            await Task.Delay(250);   // another process: no event to wait on, so poll until the deadline
        }
        throw new TimeoutException($"{uri} still answered {last} at the deadline\n{nodes.Logs()}");
    }
}
