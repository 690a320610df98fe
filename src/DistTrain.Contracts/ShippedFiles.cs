namespace DistTrain.Contracts;

/// <summary>
/// Finds a file or folder the repository ships with the executable (<c>data/</c>, <c>examples/</c>,
/// <c>cluster-config/</c>, …): beside the assembly when published or copied by the build, else up the tree from it
/// (a tool or test run from a checkout). The one search every caller uses.
/// </summary>
public static class ShippedFiles
{
    /// <param name="relative">A path under the repository root, with '/' separators, e.g. <c>cluster-config/akka.hocon</c>.</param>
    /// <returns>The full path of the nearest match.</returns>
    /// <exception cref="FileNotFoundException">Nothing matches beside the assembly or above it.</exception>
    public static string Find(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"{relative} not found beside {AppContext.BaseDirectory} or above it", relative);
    }
}
