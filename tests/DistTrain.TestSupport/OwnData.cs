using DistTrain.Contracts;
using DistTrain.Data;

namespace DistTrain.TestSupport;

/// <summary>examples/own-data: the specs and data files of the "bring your own data" examples.</summary>
public static class OwnData
{
    /// <summary>The shipped folder.</summary>
    public static string Folder => ShippedFiles.Find("examples/own-data");

    /// <summary>A copy of the folder (without any shard cache) as a data root of the test's own, so its cache goes with it.</summary>
    public static string CopyTo(string into)
    {
        var source = Folder;
        var root = Path.Combine(into, "own-data");
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories).Where(f => !f.Contains(".disttrain-cache")))
        {
            var target = Path.Combine(root, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return root;
    }
}
