using DistTrain.Contracts;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Management.Cluster.Bootstrap;
using Akka.Remote.Hosting;
using Akka.Persistence.Sql.Hosting;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Cluster.Observability;
using DistTrain.Cluster.Security;
using Akka.Event;
using System.Security.Cryptography.X509Certificates;
using DistTrain.Cluster.Worker;
using DistTrain.Execution;
using Microsoft.Extensions.DependencyInjection;

namespace DistTrain.Host;

/// <summary>
/// The node's actor system with Akka.Hosting: remoting, clustering with the node's roles, the coordinator
/// singleton and the job manager singleton with its journal (on coordinator-role nodes; the coordinator's proxy
/// everywhere), <see cref="IJobService"/> for the job API, the metrics actor, and one worker actor per device.
/// <see cref="NodeComposition"/> calls it; the web side (ports, routes) is <see cref="NodeWebHost"/>'s.
/// </summary>
public static class AkkaNode
{
    public const string CoordinatorName = "coordinator";
    public const string JobManagerName = "jobs";

    /// <param name="logLevel">Akka's log level (INFO for a node of its own; WARNING for one embedded in a CLI command).</param>
    public static IServiceCollection AddDistTrainNode(this IServiceCollection services, NodeSettings settings,
        NodeEngine engine, Func<IDataPlane> dataPlanes, IReducerHost? reducer, string logLevel = "INFO")
    {
        settings.Validate();
        var store = settings.IsCoordinator ? JobStore.Parse(settings.JobStore, settings.RunRoot) : null;
        if (store is not null) services.AddSingleton<IJobService>(sp => new ActorJobService(sp.GetRequiredService<ActorRegistry>(), new JobEventFeed(sp.GetRequiredService<ActorSystem>())));
        bool kubernetes = settings.Discovery == NodeSettings.KubernetesDiscovery;
        // On Kubernetes, cluster bootstrap finds the other pods through the API server; k8s.hocon says how.
        string hocon = File.ReadAllText(ClusterConfigPath("akka.hocon"))
            + (kubernetes ? "\n" + File.ReadAllText(ClusterConfigPath("k8s.hocon")) : "")
            + $"\nakka.loglevel = {logLevel}\n"
            + (settings.SeedNodeTimeout is { } seedTimeout ? $"akka.cluster.seed-node-timeout = {(long)seedTimeout.TotalSeconds}s\n" : "")
            // A node embedded in a command reports problems in its own words; the proxies' start-up chatter is noise there.
            + (logLevel == "INFO" ? "" : "akka.cluster.singleton-proxy.log-singleton-identification-failure = off\n");
        // Loaded before anything starts: a missing or unreadable file stops the node with its name.
        var tls = settings.ClusterTls?.Load();
        services.AddDistTrainMetrics(settings);   // the node's Prometheus registry when settings.MetricsPort > 0
        services.AddAkka(NodeSettings.SystemName, builder =>
        {
            builder
                .AddHocon(ConfigurationFactory.ParseString(hocon), HoconAddMode.Prepend)
                .WithRemoting(RemotingOptions(settings, tls))
                .WithClustering(new ClusterOptions
                {
                    Roles = settings.Roles.ToArray(),
                    SeedNodes = kubernetes ? [] : settings.Seeds.Count > 0 ? settings.Seeds.ToArray() : [settings.Address],
                });
            // Started by ClusterBootstrapStart once the management port serves the contact-point route.
            if (kubernetes)
                builder.WithClusterBootstrap(autoStart: false);
            var singletonOptions = new ClusterSingletonOptions { Role = Roles.Coordinator, BufferSize = 1000 };
            if (store is not null)
            {
                builder.WithSingleton<CoordinatorProxyKey>(CoordinatorName, CoordinatorActor.Props(reducer), singletonOptions, createProxyToo: true);
                // Label shards and evaluate stages run on workers; the coordinator node only joins label shards.
                var inference = engine.Inference;
                string? dataRoot = settings.DataRoot;
                builder
                    .WithSqlPersistence(store.ConnectionString, store.Provider, autoInitialize: true)
                    .WithCustomSerializer(JobJournalSerializer.Id, JobJournalSerializer.Bindings, system => new JobJournalSerializer(system))
                    .WithSingleton<JobManagerProxyKey>(JobManagerName,
                        (_, registry, _) => JobManagerActor.Props(registry.Get<CoordinatorProxyKey>(), inference, settings.RunRoot, dataRoot, engine.Checkpoints),
                        singletonOptions, createProxyToo: true);
            }
            else
                builder.WithSingletonProxy<CoordinatorProxyKey>(CoordinatorName, singletonOptions);
            builder.WithDistTrainMetrics(settings);
            if (tls?.OwnProblem is { } problem)
                builder.WithActors((system, _) => system.Log.Warning("cluster TLS: the other nodes will refuse this node's own certificate: {0}", problem));

            if (!settings.IsCoordinator && settings.RejoinWithoutCoordinator > TimeSpan.Zero)
                builder.WithActors((system, _) => system.ActorOf(CoordinatorWatch.Props(settings.RejoinWithoutCoordinator), "coordinator-watch"));
            if (settings.IsWorker)
                builder.WithActors((system, registry) =>
                {
                    var proxy = registry.Get<CoordinatorProxyKey>();
                    foreach (var device in settings.Devices)
                    {
                        string id = $"{settings.AdvertisedHost}:{settings.Port}/{device}";
                        system.ActorOf(WorkerActor.Props(id, settings.Address, device, proxy, dataPlanes(), engine.SessionsOn(device), engine.ShardsOn(device), settings.RunRoot),
                            "worker-" + device.Replace(':', '-'));
                    }
                });
        });
        return services;
    }

    /// <summary>
    /// Remoting over mutual TLS: each end presents its certificate and checks the other's with
    /// <see cref="PeerCertificatePolicy"/> (the cluster's CA only, validity, revocation). Host names are not checked:
    /// nodes dial each other by pod IP, and membership, not identity of a particular host, is what the CA vouches for.
    /// The validator is Akka's programmatic setup (DotNettySslSetup), which Akka only uses when
    /// <c>akka.remote.dot-netty.tcp.ssl.certificate.path</c> is empty: cluster-config must never set that path.
    /// </summary>
    private static RemoteOptions RemotingOptions(NodeSettings settings, ClusterTlsMaterial? tls)
    {
        var options = new RemoteOptions { HostName = settings.Host, Port = settings.Port, PublicHostName = settings.PublicHost };
        if (tls is null) return options;
        options.EnableSsl = true;
        options.Ssl = new SslOptions
        {
            X509Certificate = tls.Certificate,
            SuppressValidation = false,
            RequireMutualAuthentication = true,
            ValidateCertificateHostname = false,
            CustomValidator = (certificate, chain, peer, _, log) =>
            {
                var presented = new X509Certificate2Collection();
                if (chain is not null)
                    foreach (var element in chain.ChainElements.Skip(1)) presented.Add(element.Certificate);
                if (tls.Policy.Check(certificate, presented) is not { } reason) return true;
                log.Warning("cluster TLS: refused {0}: {1}", peer, reason);
                return false;
            },
        };
        return options;
    }

    /// <summary>Finds a file of <c>cluster-config/</c>: beside the executable (published) or up the tree (development).</summary>
    private static string ClusterConfigPath(string file) => ShippedFiles.Find(Path.Combine("cluster-config", file));
}
