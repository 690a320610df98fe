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

/// <summary>examples/hf-teacher.yaml with what it needs: a data root holding own-data/, the spec, the teacher's pre-training spec and its script.</summary>
public static class HfTeacherExample
{
    /// <summary>The files of the example besides own-data/.</summary>
    public static readonly string[] Files = ["hf-teacher.yaml", "hf-teacher-pretrain.yaml", "make-hf-teacher.sh"];

    /// <summary>A data root of the test's own (own-data/ and <see cref="Files"/>); the teacher is not made yet.</summary>
    public static string CopyTo(string into)
    {
        var root = Path.GetDirectoryName(OwnData.CopyTo(into))!;
        var examples = Path.GetDirectoryName(OwnData.Folder)!;
        foreach (var file in Files) File.Copy(Path.Combine(examples, file), Path.Combine(root, file));
        return root;
    }
}
