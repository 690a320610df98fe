namespace DistTrain.TestSupport;

/// <summary>File-system helpers for tests.</summary>
public static class TestFiles
{
    /// <summary>Copies a folder with everything under it into <paramref name="to"/> (created; existing files are not overwritten).</summary>
    public static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
