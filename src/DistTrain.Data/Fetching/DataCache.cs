namespace DistTrain.Data.Fetching;

/// <summary>Where fetched data sets live: $DISTTRAIN_CACHE, else ~/.cache/disttrain.</summary>
public static class DataCache
{
    /// <summary>Environment variable that overrides the cache root.</summary>
    public const string EnvironmentVariable = "DISTTRAIN_CACHE";

    /// <summary>The cache root this process uses (not created here).</summary>
    /// <remarks>Read here, not by the node's NodeEnvironment: only `disttrain data fetch` and the corpus loaders use it, and Data sits below that project.</remarks>
    public static string DefaultRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv)) return Path.GetFullPath(fromEnv);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".cache", "disttrain");
    }
}
