using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>Data paths stay under the data root, lexically and through symlinks.</summary>
public sealed class DataPathsTests
{
    [Theory]
    [InlineData("corpora/brown.txt", null)]
    [InlineData("a/b/c.jsonl", null)]
    [InlineData("", "must not be empty")]
    [InlineData("/abs", "must be relative to the data root, not absolute")]
    [InlineData("C:/x", "must be relative to the data root, not absolute")]
    [InlineData("a/../b", "must not contain '..' (it would escape the data root)")]
    [InlineData("a//b", "must not contain empty or '.' segments")]
    [InlineData("./a", "must not contain empty or '.' segments")]
    public void Lexical_rules(string path, string? problem) => Assert.Equal(problem, DataPaths.LexicalProblem(path));

    [Fact]
    public void Symlink_out_of_the_root_is_refused_and_the_validator_reports_it()
    {
        var dir = Directory.CreateTempSubdirectory("spec-root-");
        try
        {
            var root = Directory.CreateDirectory(Path.Combine(dir.FullName, "root")).FullName;
            var outside = Directory.CreateDirectory(Path.Combine(dir.FullName, "outside")).FullName;
            Directory.CreateDirectory(Path.Combine(root, "corpora"));
            File.CreateSymbolicLink(Path.Combine(root, "escape"), outside);
            File.CreateSymbolicLink(Path.Combine(root, "inside"), Path.Combine(root, "corpora"));

            Assert.Equal(Path.Combine(root, "corpora", "x.txt"), DataPaths.Resolve(root, "corpora/x.txt", out var p1));
            Assert.Null(p1);
            Assert.NotNull(DataPaths.Resolve(root, "inside/x.txt", out _));
            Assert.Null(DataPaths.Resolve(root, "escape/x.txt", out var p2));
            Assert.Contains("outside the data root", p2);

            var yaml = SpecText.Job("  - {name: p, kind: pretrain, data: {path: escape/x.txt}}\n");
            Assert.True(JobSpecs.Load(yaml).Ok); // lexically fine…
            var result = JobSpecs.Load(yaml, dataRoot: root); // …but not on this disk
            Assert.Contains(result.Errors, e => e.Path == "stages[0].data.path" && e.Message.Contains("symbolic link"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
