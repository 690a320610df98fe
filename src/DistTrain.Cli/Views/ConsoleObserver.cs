using DistTrain.Execution;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using Spectre.Console;

namespace DistTrain.Cli.Views;

/// <summary>
/// Prints a pipeline's progress: one line per stage start, a loss line every tenth of a stage's steps (so a
/// redirected log shows the loss falling), and each stage's final metrics as a table.
/// </summary>
public sealed class ConsoleObserver(IAnsiConsole console) : IPipelineObserver
{
    private readonly Dictionary<string, int> _totals = new();
    private DateTime _stageStart;
    private long _examples;

    public void StageStarted(StageSpec stage, int totalSteps)
    {
        _totals[stage.Name] = totalSteps;
        _stageStart = DateTime.UtcNow;
        _examples = 0;
        string what = totalSteps > 0 ? $"{totalSteps} steps" : "inference";
        console.MarkupLine($"[bold]▶ {Markup.Escape(stage.Name)}[/] ({stage.Kind.ToString().ToLowerInvariant()}, {stage.Model.Family.ToString().ToLowerInvariant()}, {what})");
    }

    public void StepCompleted(StageSpec stage, StepReport r)
    {
        _examples += r.Examples;
        int total = Math.Max(1, _totals[stage.Name]);
        int every = Math.Max(1, total / 10);
        bool last = r.Step + 1 == total;
        if (r.Step % every != 0 && !last && r.Evaluation is null) return;
        double seconds = (DateTime.UtcNow - _stageStart).TotalSeconds;
        string bar = Bar((r.Step + 1.0) / total);
        console.MarkupLine($"  {bar} step {r.Step + 1,5}/{total}  loss [yellow]{r.Loss,7:0.0000}[/]  lr {r.LearningRate:0.0e+0}  {_examples / Math.Max(seconds, 1e-9),6:0.0} ex/s");
        if (r.Evaluation is not null)
            console.MarkupLine("  [blue]validation[/] " + Markup.Escape(string.Join("  ", r.Evaluation.Select(kv => $"{kv.Key} {kv.Value:0.###}"))));
    }

    public void InferenceProgress(StageSpec stage, int done, int total)
    {
        if (done == total || done % Math.Max(1, total / 4) < 32)
            console.MarkupLine($"  {Bar((double)done / Math.Max(1, total))} {done}/{total} examples");
    }

    public void StageFinished(StageSpec stage, IReadOnlyDictionary<string, double> metrics)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (name, value) in metrics) table.AddRow(name, value.ToString(Math.Abs(value) >= 1000 ? "N0" : "0.####"));
        console.Write(table);
    }

    private static string Bar(double fraction)
    {
        int filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * 20);
        return "[green]" + new string('█', filled) + "[/][grey]" + new string('░', 20 - filled) + "[/]";
    }
}
