using DistTrain.Api.V1;
using Spectre.Console;

namespace DistTrain.Cli.Views;

/// <summary>Jobs, stages and workers as Spectre tables (what `jobs`, `status`, `workers` and `watch` print).</summary>
public static class JobTables
{
    public static string Name(this State s) => s switch
    {
        State.Queued => "queued",
        State.Running => "running",
        State.Succeeded => "succeeded",
        State.Failed => "failed",
        State.Cancelled => "cancelled",
        _ => "unknown",
    };

    public static string Markup(this State s) => s switch
    {
        State.Succeeded => "[green]succeeded[/]",
        State.Failed => "[red]failed[/]",
        State.Cancelled => "[yellow]cancelled[/]",
        State.Running => "[blue]running[/]",
        _ => s.Name(),
    };

    public static bool IsFinal(this State s) => s is State.Succeeded or State.Failed or State.Cancelled;

    public static Table Jobs(IEnumerable<JobReply> jobs)
    {
        var table = new Table().Border(TableBorder.Simple).AddColumns("ID", "NAME", "STATE", "PRIORITY", "SUBMITTED", "STAGES");
        foreach (var j in jobs)
        {
            int done = j.Stages.Count(s => s.State == State.Succeeded);
            var current = j.Stages.FirstOrDefault(s => s.State == State.Running);
            string stages = $"{done}/{j.Stages.Count} done" + (current is null ? "" : $", {current.Name} {current.Step}/{current.TotalSteps}");
            table.AddRow(Esc(j.JobId), Esc(j.Name), j.State.Markup(), j.Priority.ToString(), j.Submitted?.ToDateTimeOffset().ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss") ?? "", Esc(stages));
        }
        return table;
    }

    public static Table Stages(JobReply job)
    {
        var table = new Table().Border(TableBorder.Simple).AddColumns("STAGE", "KIND", "STATE", "STEP", "METRICS");
        foreach (var s in job.Stages)
            table.AddRow(Esc(s.Name), Esc(s.Kind), s.State.Markup(), s.TotalSteps > 0 ? $"{s.Step}/{s.TotalSteps}" : "-",
                s.Error.Length > 0 ? $"[red]{Esc(s.Error)}[/]" : Esc(JobWatchView.Metrics(s.Metrics)));
        return table;
    }

    /// <summary>The status of one job: a header line, the error if it failed, and its stages.</summary>
    public static void WriteJob(IAnsiConsole console, JobReply job)
    {
        console.MarkupLine($"job [bold]{Esc(job.JobId)}[/] ({Esc(job.Name)}): {job.State.Markup()}, priority {job.Priority}, submitted {job.Submitted?.ToDateTimeOffset().ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        if (job.Error.Length > 0) console.MarkupLine($"[red]error:[/] {Esc(job.Error)}");
        console.Write(Stages(job));
    }

    public static Table Workers(IEnumerable<Worker> workers)
    {
        var table = new Table().Border(TableBorder.Simple).AddColumns("WORKER", "NODE", "DEVICE", "JOB", "STAGE", "RANK", "HEALTH");
        foreach (var w in workers)
            table.AddRow(Esc(w.WorkerId), Esc(w.Node), Esc(w.Device), Esc(w.JobId.Length > 0 ? w.JobId : "-"), Esc(w.Stage.Length > 0 ? w.Stage : "-"),
                w.Rank >= 0 ? w.Rank.ToString() : "-", w.Health == "up" ? "[green]up[/]" : $"[red]{Esc(w.Health)}[/]");
        return table;
    }

    private static string Esc(string s) => Spectre.Console.Markup.Escape(s);
}
