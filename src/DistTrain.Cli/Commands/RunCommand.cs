using System.CommandLine;
using DistTrain.Cli.Views;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;
using Spectre.Console;
using TorchSharp;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain run SPEC.yaml [--quick] [--out DIR] [--resume] [--device cpu] [--data-root DIR]`: runs a whole job spec in
/// this process, stage by stage. The same file runs unchanged on the cluster with `disttrain submit`, where the nodes'
/// DISTTRAIN_DATA_ROOT plays the part of --data-root.
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
        var dataRoot = DataRootOption();
        var cmd = new Command("run", "Run a job spec in this process.") { spec, quick, output, resume, device, threads, dataRoot };
        cmd.SetAction(parse =>
        {
            var root = DataRoot(parse.GetValue(dataRoot), parse.GetValue(spec)!);
            var result = JobSpecs.LoadFile(parse.GetValue(spec)!.FullName, root, quick: parse.GetValue(quick), checkpoints: HfCheckpointModels.Instance);
            if (!result.Ok)
            {
                foreach (var e in result.Errors) Console.Error.WriteLine($"{parse.GetValue(spec)!.Name}: {e}");
                if (result.Errors.Any(e => e.Message.Contains("data root")))
                    Console.Error.WriteLine($"data root: {root} (paths in the spec are relative to it; --data-root changes it)");
                return 2;
            }
            var job = result.Spec!;
            string dir = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"{job.Name}-{DateTime.Now:yyyyMMdd-HHmmss}"));
            try
            {
                return Run(job, dir, parse.GetValue(device)!, parse.GetValue(threads), parse.GetValue(resume), root);
            }
            catch (Exception e) when (e is Data.Files.DataFormatException or InvalidDataException)
            {
                // Bad data is the user's to fix: say what and where, without a stack trace.
                Console.Error.WriteLine($"{parse.GetValue(spec)!.Name}: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }

    /// <summary>The <c>--data-root</c> option of every command that reads a spec's data in this process.</summary>
    public static Option<DirectoryInfo?> DataRootOption() => new("--data-root")
    {
        Description = "Folder that data.path and tokenizer.path are relative to (default: the spec file's folder).",
    };

    /// <summary>The data root of a local run: the option's, else the spec file's folder.</summary>
    public static string DataRoot(DirectoryInfo? option, FileInfo spec) => option?.FullName ?? spec.Directory?.FullName ?? Directory.GetCurrentDirectory();

    /// <summary>Runs <paramref name="job"/> with its outputs in <paramref name="runDirectory"/>; prints progress and the report path.</summary>
    public static int Run(JobSpec job, string runDirectory, string device, int threads, bool resume, string? dataRoot)
    {
        if (threads > 0) torch.set_num_threads(threads);
        var console = AnsiConsole.Console;
        var root = Path.GetDirectoryName(Path.GetFullPath(runDirectory))!;
        var runner = new PipelineRunner(root, Path.GetFileName(Path.GetFullPath(runDirectory)), new torch.Device(device), new ConsoleObserver(console), dataRoot);
        var report = runner.Run(job, resume);
        console.MarkupLine($"[bold]report:[/] {Markup.Escape(Path.Combine(report.RunDirectory, "report.json"))}");
        return 0;
    }
}
