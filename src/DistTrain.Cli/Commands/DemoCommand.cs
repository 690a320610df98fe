using System.CommandLine;
using System.Text.Json;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain demo [--quick] [--out DIR]`: the main job on the bundled Brown Corpus. Pre-trains a small GPT-style
/// decoder (examples/demo-pretrain.yaml) and prints the falling loss and the validation perplexity against a
/// unigram baseline on the same tokens.
/// </summary>
public static class DemoCommand
{
    public const string Spec = "demo-pretrain.yaml";

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "A shorter run (about a minute)." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run folder (default: runs/demo-<time>)." };
        var cmd = new Command("demo", "Run the main job on the bundled Brown Corpus.") { quick, output };
        cmd.SetAction(parse =>
        {
            var result = JobSpecs.LoadFile(ExamplePath(Spec));
            if (!result.Ok) throw new InvalidOperationException(string.Join("; ", result.Errors));
            var job = result.Spec!;
            // --quick keeps the model and data but runs a quarter of the steps (the generic quick transform's 20
            // steps would not get below the baseline).
            if (parse.GetValue(quick))
                job = job with { Stages = job.Stages.Select(s => s with { Train = s.Train with { Steps = s.Train.Steps / 4, Warmup = s.Train.Warmup / 4, EvalEvery = s.Train.Steps / 8 } }).ToList() };
            string dir = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"demo-{DateTime.Now:yyyyMMdd-HHmmss}"));
            AnsiConsole.MarkupLine($"[bold]DistTrain demo[/]: next-word pre-training on the Brown Corpus ({Markup.Escape(dir)})");
            int code = RunCommand.Run(job, dir, "cpu", threads: 0, resume: false);
            if (code != 0) return code;
            return Summarise(Path.Combine(dir, "report.json"));
        });
        return cmd;
    }

    private static int Summarise(string reportPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(reportPath));
        var m = doc.RootElement.GetProperty("stages").GetProperty("pretrain").GetProperty("metrics");
        double ppl = m.GetProperty("perplexity").GetDouble(), unigram = m.GetProperty("unigram_perplexity").GetDouble();
        string verdict = ppl < unigram ? "[green]below[/]" : "[red]NOT below[/]";
        AnsiConsole.MarkupLine($"validation perplexity [bold]{ppl:0.0}[/] vs unigram baseline {unigram:0.0}: {ppl / unigram:0.00}× ({verdict} the baseline)");
        return ppl < unigram ? 0 : 3;
    }

    /// <summary>A file of <c>examples/</c>: beside the executable (published) or up the tree (development).</summary>
    public static string ExamplePath(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "examples", file);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"examples/{file} not found beside {AppContext.BaseDirectory} or above it");
    }
}
