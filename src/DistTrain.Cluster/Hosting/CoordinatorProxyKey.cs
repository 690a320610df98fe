namespace DistTrain.Cluster.Hosting;

/// <summary>Marker key for the coordinator singleton proxy in the actor registry (registered by the host's AkkaNode).</summary>
public sealed class CoordinatorProxyKey;
