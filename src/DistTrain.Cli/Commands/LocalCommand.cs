using DistTrain.Host;
using System.CommandLine;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain local --workers N [--run SPEC.yaml] [--quick] [--out DIR] [--metrics] [--data-root DIR]`: a real cluster on loopback, the coordinator
/// in this process and one worker process per device, all joined with Akka.Cluster. With --run it runs the job
/// (training stages data-parallel on the workers) and exits; without, it serves until Ctrl+C.
/// </summary>
public static class LocalCommand
{
    public static Command Create()
    {
        var workers = new Option<int>("--workers") { Description = "Worker processes.", DefaultValueFactory = _ => 2 };
        var run = new Option<FileInfo?>("--run") { Description = "A job spec to run on the cluster, then exit." };
        var quick = new Option<bool>("--quick") { Description = "Apply the spec's quick (smoke) transform." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run root (default: runs/local-<time>)." };
        var threads = new Option<int>("--threads") { Description = "Torch threads per worker.", DefaultValueFactory = _ => 1 };
        var metrics = new Option<bool>("--metrics") { Description = "Serve Prometheus /metrics on a free port of every node (printed at start)." };
        var dataRoot = new Option<DirectoryInfo?>("--data-root")
        {
            Description = "Every node's data root, which specs' data.path is relative to (default: the --run spec's folder, else $DISTTRAIN_DATA_ROOT).",
        };
        var cmd = new Command("local", "Start a cluster on this machine (coordinator + worker processes).") { workers, run, quick, output, threads, metrics, dataRoot };
        cmd.SetAction(async (parse, ct) =>
        {
            int n = parse.GetValue(workers);
            if (n < 1) { Console.Error.WriteLine("disttrain local: --workers must be at least 1"); return 2; }
            string root = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"local-{DateTime.Now:yyyyMMdd-HHmmss}"));
            string? data = parse.GetValue(dataRoot)?.FullName ?? parse.GetValue(run)?.Directory?.FullName
                ?? (NodeEnvironment.ReadDataRoot() is { } env ? Path.GetFullPath(env) : null);
            await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(n, root, ExecutableCommand.Self(), parse.GetValue(threads))
            {
                ServeMetrics = parse.GetValue(metrics),
                DataRoot = data,
            }, ct);
            AnsiConsole.MarkupLine($"[bold]cluster up[/]: coordinator 127.0.0.1:{cluster.Port}, {n} worker process(es); logs in {Markup.Escape(cluster.LogDirectory)}");
            AnsiConsole.MarkupLine($"job API: [bold]{cluster.GrpcAddress}[/] (disttrain submit SPEC.yaml --watch --server {cluster.GrpcAddress})");
            if (data is not null) AnsiConsole.MarkupLine($"data root: {Markup.Escape(data)}");
            if (cluster.MetricsTargets.Count > 0) AnsiConsole.MarkupLine($"[bold]metrics[/] (coordinator first): {string.Join(", ", cluster.MetricsTargets.Select(t => $"http://{t}/metrics"))}");
            if (parse.GetValue(run) is not FileInfo spec)
            {
                // Akka handles Ctrl+C and SIGTERM itself (it shuts the node down); the host stopping ends the command.
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, cluster.Stopping);
                await Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                return 0;
            }
            var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(File.ReadAllText(spec.FullName), parse.GetValue(quick), e =>
            {
                if (e.Body is StageChanged { Stage: { State: not JobState.Queued } s })
                    AnsiConsole.MarkupLine($"{(s.State == JobState.Succeeded ? "[green]✓[/]" : s.State == JobState.Running ? "[blue]▶[/]" : "[red]✗[/]")} {Markup.Escape(s.Name)}: {s.State.ToString().ToLowerInvariant()}{Markup.Escape(s.Error is null ? "" : " — " + s.Error)}");
            }, ct);
            AnsiConsole.MarkupLine($"[bold]{result.State.ToString().ToLowerInvariant()}[/]; report: {Markup.Escape(Path.Combine(root, result.JobId, "report.json"))}");
            return result.State == JobState.Succeeded ? 0 : 1;
        });
        return cmd;
    }
}
