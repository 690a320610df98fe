using System.CommandLine;
using DistTrain.Cli.Views;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;
using Spectre.Console;
using TorchSharp;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain run SPEC.yaml [--quick] [--out DIR] [--resume] [--device cpu]`: runs a whole job spec in this
/// process, stage by stage. The same file runs unchanged on the cluster with `disttrain submit`.
/// </summary>
public static class RunCommand
{
    public static Command Create()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Job spec (YAML); see docs/spec-reference.md." };
        var quick = new Option<bool>("--quick") { Description = "Smoke run: at most 20 steps and 64 examples per stage." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run folder (default: runs/<job>-<time>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue each stage from its newest checkpoint in --out; finished stages are skipped." };
        var device = new Option<string>("--device") { Description = "cpu or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "Torch intra-op threads (0: libtorch's default).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("run", "Run a job spec in this process.") { spec, quick, output, resume, device, threads };
        cmd.SetAction(parse =>
        {
            var result = JobSpecs.LoadFile(parse.GetValue(spec)!.FullName, quick: parse.GetValue(quick));
            if (!result.Ok)
            {
                foreach (var e in result.Errors) Console.Error.WriteLine($"{parse.GetValue(spec)!.Name}: {e}");
                return 2;
            }
            var job = result.Spec!;
            string dir = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"{job.Name}-{DateTime.Now:yyyyMMdd-HHmmss}"));
            return Run(job, dir, parse.GetValue(device)!, parse.GetValue(threads), parse.GetValue(resume));
        });
        return cmd;
    }

    /// <summary>Runs <paramref name="job"/> with its outputs in <paramref name="runDirectory"/>; prints progress and the report path.</summary>
    public static int Run(JobSpec job, string runDirectory, string device, int threads, bool resume)
    {
        if (threads > 0) torch.set_num_threads(threads);
        var console = AnsiConsole.Console;
        var root = Path.GetDirectoryName(Path.GetFullPath(runDirectory))!;
        var runner = new PipelineRunner(root, Path.GetFileName(Path.GetFullPath(runDirectory)), new torch.Device(device), new ConsoleObserver(console));
        var report = runner.Run(job, resume);
        console.MarkupLine($"[bold]report:[/] {Markup.Escape(Path.Combine(report.RunDirectory, "report.json"))}");
        return 0;
    }
}
