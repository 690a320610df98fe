using DistTrain.Contracts;

namespace DistTrain.Data.Corpora;

/// <summary>Finds files of the repository's data/ folder: copied next to the assembly by the build, or in the checkout.</summary>
public static class DataFiles
{
    /// <summary>Full path of data/<paramref name="relative"/>; throws FileNotFoundException listing where it looked.</summary>
    public static string Find(string relative)
    {
        // The build copies data/brown/* to the output (see DistTrain.Data.csproj), so installed tools find it beside
        // the assembly; tools run from a checkout without that copy find the checkout's data/.
        try { return ShippedFiles.Find(Path.Combine("data", relative)); }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"data file not found: {e.Message}. Regenerate with `node scripts/make-brown-corpus.mjs`.", relative);
        }
    }
}
