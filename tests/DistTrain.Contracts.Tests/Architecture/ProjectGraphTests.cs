using System.Text.Json;
using System.Xml.Linq;
using DistTrain.Contracts;

namespace DistTrain.Contracts.Tests.Architecture;

/// <summary>
/// The layers, as the compiler sees them: which project may reference which (docs/architecture.md), and that
/// TorchSharp is not reachable from orchestration (Cluster), its seams (Execution), the data plane (Collective) or
/// the contracts — neither through a project reference nor through a package that brings it along.
/// </summary>
public sealed class ProjectGraphTests
{
    /// <summary>What each project under src/ may reference. A new reference is a decision: write it here and in docs/architecture.md.</summary>
    private static readonly Dictionary<string, string[]> MayReference = new()
    {
        ["DistTrain.Contracts"] = [],
        ["DistTrain.Execution"] = ["DistTrain.Contracts"],
        ["DistTrain.Collective"] = [],
        ["DistTrain.Data"] = ["DistTrain.Contracts"],
        ["DistTrain.Models"] = [],
        ["DistTrain.Training"] = ["DistTrain.Contracts", "DistTrain.Execution", "DistTrain.Data", "DistTrain.Models"],
        ["DistTrain.Cluster"] = ["DistTrain.Contracts", "DistTrain.Execution", "DistTrain.Collective"],
        ["DistTrain.Api"] = ["DistTrain.Cluster"],
        ["DistTrain.Host"] = ["DistTrain.Api", "DistTrain.Cluster", "DistTrain.Training"],
        ["DistTrain.Cli"] = ["DistTrain.Training", "DistTrain.Cluster", "DistTrain.Api", "DistTrain.Host"],
    };

    private static readonly string[] TensorFree = ["DistTrain.Contracts", "DistTrain.Execution", "DistTrain.Collective", "DistTrain.Cluster", "DistTrain.Api"];

    private static readonly string Src = ShippedFiles.Find("src");

    [Fact]
    public void Every_project_references_only_what_its_layer_may()
    {
        var projects = Directory.GetDirectories(Src).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(MayReference.Keys.Order(), projects!);
        foreach (var project in projects)
        {
            var extra = References(project!).Except(MayReference[project!]).ToList();
            Assert.True(extra.Count == 0, $"{project} references {string.Join(", ", extra)}, which its layer may not (docs/architecture.md)");
        }
    }

    [Fact]
    public void TorchSharp_is_not_reachable_from_orchestration_or_the_contracts()
    {
        foreach (var project in TensorFree)
        {
            var reachable = Reachable(project);
            var withTorch = reachable.Where(p => Packages(p).Any(IsTorch)).ToList();
            Assert.True(withTorch.Count == 0, $"{project} reaches TorchSharp through {string.Join(", ", withTorch)}");
        }
    }

    [Fact]
    public void No_package_brings_TorchSharp_into_orchestration_transitively()
    {
        foreach (var project in TensorFree)
        {
            // NuGet's resolved graph of the project, written by restore (the build runs it before the tests).
            string assets = Path.Combine(Src, project, "obj", "project.assets.json");
            Assert.True(File.Exists(assets), $"{assets} is missing: restore the solution first");
            using var doc = JsonDocument.Parse(File.ReadAllText(assets));
            var torch = doc.RootElement.GetProperty("libraries").EnumerateObject().Select(l => l.Name).Where(IsTorch).ToList();
            Assert.True(torch.Count == 0, $"{project} resolves {string.Join(", ", torch)}");
        }
    }

    [Fact]
    public void The_graph_walk_sees_torch_where_it_is()
    {
        // The check above would pass vacuously if the walk missed references: Training must reach TorchSharp through Models.
        Assert.Contains("DistTrain.Models", Reachable("DistTrain.Training"));
        Assert.Contains(Packages("DistTrain.Models"), IsTorch);
    }

    private static bool IsTorch(string package) => package.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase);

    private static XDocument Project(string name) => XDocument.Load(Path.Combine(Src, name, name + ".csproj"));

    private static IEnumerable<string> References(string name) =>
        Project(name).Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/')));

    private static IEnumerable<string> Packages(string name) =>
        Project(name).Descendants("PackageReference").Select(r => r.Attribute("Include")!.Value);

    /// <summary>The project and everything it references, directly or not, among the projects under src/.</summary>
    private static HashSet<string> Reachable(string name)
    {
        var seen = new HashSet<string>();
        var todo = new Stack<string>([name]);
        while (todo.TryPop(out var next))
            if (seen.Add(next) && Directory.Exists(Path.Combine(Src, next)))
                foreach (var r in References(next)) todo.Push(r);
        return seen;
    }
}
