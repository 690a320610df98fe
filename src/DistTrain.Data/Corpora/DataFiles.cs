namespace DistTrain.Data.Corpora;

/// <summary>Finds files of the repository's data/ folder: copied next to the assembly by the build, or in the checkout.</summary>
public static class DataFiles
{
    /// <summary>Full path of data/<paramref name="relative"/>; throws FileNotFoundException listing where it looked.</summary>
    public static string Find(string relative)
    {
        var tried = new List<string>();
        // The build copies data/brown/* to the output (see DistTrain.Data.csproj), so installed tools find it here.
        var beside = Path.Combine(AppContext.BaseDirectory, "data", relative);
        tried.Add(beside);
        if (File.Exists(beside)) return beside;
        // Fallback for tools run from a checkout without that copy: walk up to the folder that holds data/.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "data", relative);
            if (File.Exists(candidate)) return candidate;
        }
        tried.Add($"data/{relative} in every parent of {AppContext.BaseDirectory}");
        throw new FileNotFoundException($"data file not found; looked at: {string.Join("; ", tried)}. " +
                                        "Regenerate with `node scripts/make-brown-corpus.mjs`.", relative);
    }
}
