namespace DistTrain.Deploy.Tests;

/// <summary>Paths in the repository these tests check (found from the test's output folder upwards).</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DistTrain.sln"))) return dir.FullName;
        throw new InvalidOperationException($"DistTrain.sln not found above {AppContext.BaseDirectory}");
    }
}
