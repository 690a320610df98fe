using System.Net;
using Akka.Actor;
using Akka.Discovery;
using k8s;
using k8s.Models;

namespace DistTrain.Cluster.Hosting;

/// <summary>
/// Akka discovery method <c>kubernetes-pods</c> (cluster-config/k8s.hocon): the running pods of this pod's namespace
/// that carry the configured labels, each with the container port that cluster bootstrap asks for by name.
/// <para>
/// It replaces Akka.Discovery.KubernetesApi 1.5.73, which was built against KubernetesClient 17 and fails on every
/// KubernetesClient this project can restore (19, 21) with MissingMethodException (the V1PodList constructor it calls
/// is gone). The API call is the same one: list pods by label selector, as the pod's service account (in-cluster
/// token, namespace and CA), so RBAC needs get/watch/list on pods and nothing else.
/// </para>
/// </summary>
public sealed class KubernetesPodDiscovery : ServiceDiscovery
{
    public const string ConfigPath = "akka.discovery.kubernetes-pods";

    private readonly string _selectorFormat;
    private readonly Lazy<(Kubernetes Client, string Namespace)> _api;

    public KubernetesPodDiscovery(ExtendedActorSystem system)
    {
        _selectorFormat = system.Settings.Config.GetString($"{ConfigPath}.pod-label-selector", "app={0}");
        _api = new(() =>
        {
            KubernetesClientConfiguration config;
            try { config = KubernetesClientConfiguration.InClusterConfig(); }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"{EnvironmentVariables.Discovery}=kubernetes needs to run in a Kubernetes pod: its service-account token, namespace and CA " +
                    "under /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT", e);
            }
            var client = new Kubernetes(config);
            system.WhenTerminated.ContinueWith(_ => client.Dispose(), TaskScheduler.Default);
            return (client, config.Namespace);
        });
    }

    /// <summary>The label selector for a service name: <c>pod-label-selector</c> with <c>{0}</c> replaced by it.</summary>
    public string Selector(string serviceName) => string.Format(_selectorFormat, serviceName);

    public override async Task<Resolved> Lookup(Lookup lookup, TimeSpan resolveTimeout)
    {
        var (client, ns) = _api.Value;
        using var timeout = new CancellationTokenSource(resolveTimeout);
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: Selector(lookup.ServiceName), cancellationToken: timeout.Token)
            .ConfigureAwait(false);
        return new Resolved(lookup.ServiceName, Targets(pods.Items, lookup.PortName));
    }

    /// <summary>
    /// Running, not terminating pods with an IP; with a port name, only pods declaring a container port of exactly that
    /// name (a pod without it is no contact point), and that port.
    /// </summary>
    public static IEnumerable<ResolvedTarget> Targets(IEnumerable<V1Pod> pods, string? portName)
    {
        foreach (var pod in pods)
        {
            if (pod.Metadata?.DeletionTimestamp is not null) continue;
            if (pod.Status?.Phase != "Running" || string.IsNullOrEmpty(pod.Status.PodIP)) continue;
            int? port = null;
            if (!string.IsNullOrEmpty(portName))
            {
                port = pod.Spec?.Containers?.SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name == portName)?.ContainerPort;
                if (port is null) continue;
            }
            yield return new ResolvedTarget(pod.Status.PodIP, port, IPAddress.Parse(pod.Status.PodIP));
        }
    }
}
