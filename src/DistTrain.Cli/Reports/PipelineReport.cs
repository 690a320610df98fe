using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DistTrain.Cli.Reports;

/// <summary>One recorded progress point of one rank (what WatchJob streams).</summary>
public sealed record ProgressPoint(string Stage, int Rank, int Step, double Loss, double TokensPerSecond);

/// <summary>
/// The human side of a finished run, written next to its <c>report.json</c>: <c>report.md</c> with every stage's
/// metrics and the teacher-against-student table, and PNG plots (ScottPlot) of the loss per stage and the throughput
/// per rank. It reads only the run folder and the job's recorded progress, so it works for any pipeline.
/// </summary>
public static class PipelineReport
{
    public const string Markdown = "report.md";
    public const string LossPlot = "loss.png";
    public const string ThroughputPlot = "throughput.png";

    /// <returns>The files written.</returns>
    public static IReadOnlyList<string> Write(string runDir, string jobId, string state, IReadOnlyList<ProgressPoint> progress)
    {
        var stages = ReadStages(Path.Combine(runDir, "report.json"));
        var losses = stages.Keys.ToDictionary(s => s, s => ReadLoss(Path.Combine(runDir, s, "history.jsonl")));
        var written = new List<string>();
        if (losses.Values.Any(l => l.Count > 1))
        {
            var plot = new ScottPlot.Plot();
            foreach (var (stage, points) in losses.Where(kv => kv.Value.Count > 1))
                plot.Add.ScatterLine(points.Select(p => (double)p.Step).ToArray(), points.Select(p => p.Loss).ToArray()).LegendText = stage;
            plot.Title("Training loss per stage");
            plot.XLabel("step");
            plot.YLabel("loss (per target)");
            plot.ShowLegend();
            written.Add(Save(plot, Path.Combine(runDir, LossPlot)));
        }
        var throughput = progress.Where(p => p.Rank >= 0 && p.TokensPerSecond > 0).GroupBy(p => (p.Stage, p.Rank)).Where(g => g.Count() > 1).ToList();
        if (throughput.Count > 0)
        {
            var plot = new ScottPlot.Plot();
            foreach (var g in throughput.OrderBy(g => g.Key.Stage).ThenBy(g => g.Key.Rank))
            {
                var points = g.OrderBy(p => p.Step).ToList();
                plot.Add.ScatterLine(points.Select(p => (double)p.Step).ToArray(), points.Select(p => p.TokensPerSecond).ToArray()).LegendText = $"{g.Key.Stage} rank {g.Key.Rank}";
            }
            plot.Title("Throughput per rank");
            plot.XLabel("step");
            plot.YLabel("target tokens per second");
            plot.ShowLegend();
            written.Add(Save(plot, Path.Combine(runDir, ThroughputPlot)));
        }
        string md = Path.Combine(runDir, Markdown);
        File.WriteAllText(md, Render(jobId, state, stages, losses, progress, written.Select(Path.GetFileName).ToList()!));
        written.Insert(0, md);
        return written;
    }

    private static string Save(ScottPlot.Plot plot, string path)
    {
        plot.SavePng(path, 900, 500);
        return path;
    }

    private static string Render(string jobId, string state, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> stages,
        IReadOnlyDictionary<string, List<(int Step, double Loss)>> losses, IReadOnlyList<ProgressPoint> progress, IReadOnlyList<string> plots)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# Run {jobId}").AppendLine();
        sb.AppendLine($"State: **{state}**. Every figure below is read from this folder (`report.json`, each stage's `metrics.json` and `history.jsonl`).").AppendLine();
        if (stages.Values.FirstOrDefault(m => m.ContainsKey("teacher_accuracy") && m.ContainsKey("parameter_ratio")) is { } eval)
        {
            sb.AppendLine("## Teacher against student (held-out split)").AppendLine();
            sb.AppendLine("| | accuracy | macro-F1 | parameters | inference (examples/s) |");
            sb.AppendLine("|---|---:|---:|---:|---:|");
            sb.AppendLine($"| teacher | {F(eval, "teacher_accuracy")} | {F(eval, "teacher_macro_f1")} | {N(eval, "teacher_parameters")} | {F(eval, "teacher_examples_per_second", "0")} |");
            sb.AppendLine($"| student | {F(eval, "accuracy")} | {F(eval, "macro_f1")} | {N(eval, "parameters")} | {F(eval, "examples_per_second", "0")} |");
            sb.AppendLine($"| student ÷ teacher | {F(eval, "accuracy_vs_teacher", "0.00")} | | {F(eval, "parameter_ratio", "0.00")} | {F(eval, "speedup", "0.00")}× |");
            sb.AppendLine().AppendLine($"The student agrees with the teacher on {F(eval, "agreement", "0.0%")} of the examples.").AppendLine();
        }
        sb.AppendLine("## Stages").AppendLine();
        foreach (var (stage, metrics) in stages)
        {
            var loss = losses.GetValueOrDefault(stage) ?? [];
            string trained = loss.Count > 0 ? $" — {loss.Count} recorded steps, loss {loss[0].Loss:0.000} → {loss[^1].Loss:0.000}" : "";
            sb.AppendLine($"### {stage}{trained}").AppendLine();
            sb.AppendLine("| metric | value |").AppendLine("|---|---:|");
            foreach (var (k, v) in metrics) sb.AppendLine($"| {k} | {v.ToString("G6", CultureInfo.InvariantCulture)} |");
            var ranks = progress.Where(p => p.Stage == stage && p.Rank >= 0 && p.TokensPerSecond > 0).GroupBy(p => p.Rank).OrderBy(g => g.Key).ToList();
            if (ranks.Count > 0)
                sb.AppendLine().AppendLine("Median throughput per rank: " + string.Join(", ",
                    ranks.Select(g => $"rank {g.Key} {Median(g.Select(p => p.TokensPerSecond)).ToString("0", CultureInfo.InvariantCulture)} tokens/s")) + ".");
            sb.AppendLine();
        }
        foreach (var plot in plots) sb.AppendLine($"![{plot}]({plot})").AppendLine();
        return sb.ToString();
    }

    private static string F(IReadOnlyDictionary<string, double> m, string key, string format = "0.000") =>
        m.TryGetValue(key, out double v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static string N(IReadOnlyDictionary<string, double> m, string key) =>
        m.TryGetValue(key, out double v) ? v.ToString("N0", CultureInfo.InvariantCulture) : "–";

    private static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count == 0 ? 0 : s[s.Count / 2];
    }

    private static IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> ReadStages(string reportJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(reportJson));
        var stages = new Dictionary<string, IReadOnlyDictionary<string, double>>();
        foreach (var s in doc.RootElement.GetProperty("stages").EnumerateObject())
            stages[s.Name] = s.Value.GetProperty("metrics").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        return stages;
    }

    /// <summary>Rank 0's loss per step, from a training stage's history.jsonl (absent for label and evaluate stages).</summary>
    private static List<(int Step, double Loss)> ReadLoss(string history)
    {
        if (!File.Exists(history)) return [];
        var points = new List<(int, double)>();
        foreach (var line in File.ReadLines(history))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.TryGetProperty("Step", out var step) && r.TryGetProperty("Loss", out var loss) && loss.ValueKind == JsonValueKind.Number && double.IsFinite(loss.GetDouble()))
                points.Add((step.GetInt32(), loss.GetDouble()));
        }
        return points;
    }
}
