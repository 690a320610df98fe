using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain submit SPEC.yaml [--quick] [--watch] [--server URL] [--token T]`: sends a job spec to the cluster's
/// job API and prints the job id; with --watch, follows the job until it ends (exit 0 only if it succeeded).
/// An invalid spec is refused with every bad field's path (exit 2).
/// </summary>
public static class SubmitCommand
{
    public static Command Create()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Job spec (YAML); see docs/spec-reference.md." };
        var quick = new Option<bool>("--quick") { Description = "Apply the spec's quick (smoke) transform." };
        var watch = new Option<bool>("--watch") { Description = "Follow the job until it ends." };
        var cmd = new Command("submit", "Submit a job spec to the cluster.") { spec, quick, watch };
        return cmd.WithClient(async (parse, client, ct) =>
        {
            var file = parse.GetValue(spec)!;
            if (!file.Exists) return ApiCommand.Fail("submit", $"no such file: {file.FullName}", ApiCommand.ExitCodes.InvalidInput);
            var reply = await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = await File.ReadAllTextAsync(file.FullName, ct), Quick = parse.GetValue(quick) },
                ApiCommand.Call(ct));
            AnsiConsole.MarkupLine($"submitted job [bold]{Markup.Escape(reply.JobId)}[/]");
            if (!parse.GetValue(watch)) return ApiCommand.ExitCodes.Ok;
            var finished = await JobWatchView.RunAsync(client, reply.JobId, ct);
            return WatchCommand.ExitCode(finished);
        });
    }
}
