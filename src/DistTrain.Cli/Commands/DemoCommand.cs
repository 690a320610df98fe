using DistTrain.Host;
using DistTrain.Contracts;
using System.CommandLine;
using DistTrain.Api.Client;
using DistTrain.Api.Hosting;
using DistTrain.Api.V1;
using DistTrain.Cli.Reports;
using DistTrain.Cli.Views;
using DistTrain.Data;
using DistTrain.Cluster.Hosting;
using Grpc.Core;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain demo [--quick] [--out DIR]`: the main job. Starts a cluster on loopback (this process is the
/// coordinator, with the gRPC job API; two worker processes), submits examples/brown-pipeline.yaml over gRPC —
/// RoBERTa MLM pre-training data-parallel on both workers, a genre teacher, teacher labelling of the whole corpus in
/// shards, a student at most 40% of the teacher's size, evaluation — and follows it with the `watch` view. It ends
/// with report.json, report.md (teacher against student) and PNG plots in the run folder.
/// </summary>
public static class DemoCommand
{
    public const string Spec = "brown-pipeline.yaml";
    public const int Workers = 2;

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Smoke run of the same pipeline: 20 steps and 64 examples per stage (under 2 minutes)." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run root (default: runs/demo-<time>)." };
        var cmd = new Command("demo", "Run the main job: the Brown Corpus pipeline on a local two-worker cluster, submitted over gRPC.") { quick, output };
        cmd.SetAction(async (parse, ct) =>
        {
            string root = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"demo-{DateTime.Now:yyyyMMdd-HHmmss}"));
            string spec = await File.ReadAllTextAsync(ExamplePath(Spec), ct);
            AnsiConsole.MarkupLine($"[bold]DistTrain demo[/]: {Markup.Escape(Spec)} on a local cluster, coordinator + {Workers} worker processes (run root {Markup.Escape(root)})");
            await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(Workers, root, ExecutableCommand.Self()), ct);
            AnsiConsole.MarkupLine($"cluster up: job API at {cluster.GrpcAddress}, {Workers} workers registered; node logs in {Markup.Escape(cluster.LogDirectory)}");
            using var channel = ApiChannel.Create(cluster.GrpcAddress, token: null);
            var client = new Jobs.JobsClient(channel);
            string jobId;
            try
            {
                jobId = (await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = spec, Quick = parse.GetValue(quick) }, ApiCommand.Call(ct))).JobId;
            }
            catch (RpcException e)
            {
                return ApiCommand.Fail("demo", e.Status.Detail, ApiCommand.ExitCodes.InvalidInput);
            }
            AnsiConsole.MarkupLine($"submitted job [bold]{Markup.Escape(jobId)}[/] over gRPC");
            var finished = await JobWatchView.RunAsync(client, jobId, ct);

            // The recorded progress of every rank, replayed from the start of the job's event stream.
            var progress = new List<ProgressPoint>();
            using (var replay = client.WatchJob(new WatchJobRequest { JobId = jobId }, deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: ct))
                while (await replay.ResponseStream.MoveNext(ct))
                    if (replay.ResponseStream.Current.Progress is { } p) progress.Add(new ProgressPoint(p.Stage, p.Rank, p.Step, p.Loss, p.TokensPerSecond));
            string runDir = Path.Combine(root, jobId);
            if (!File.Exists(Path.Combine(runDir, "report.json")))
            {
                AnsiConsole.MarkupLine($"[red]the job {finished.State} before any stage finished[/]: {Markup.Escape(finished.Error)}");
                return ApiCommand.ExitCodes.JobNotSucceeded;
            }
            var files = PipelineReport.Write(runDir, jobId, finished.State.ToString(), progress);
            AnsiConsole.MarkupLine("[bold]report[/]:");
            foreach (var f in new[] { Path.Combine(runDir, "report.json") }.Concat(files)) AnsiConsole.MarkupLine($"  {Markup.Escape(f)}");
            return WatchCommand.ExitCode(finished);
        });
        return cmd;
    }

    /// <summary>A file of <c>examples/</c>: beside the executable (published) or up the tree (development).</summary>
    public static string ExamplePath(string file) => ShippedFiles.Find(Path.Combine("examples", file));
}
