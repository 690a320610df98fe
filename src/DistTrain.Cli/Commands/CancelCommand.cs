using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain cancel ID`: stops a job at its next step boundary (its last checkpoint is kept). Exit 3 for an unknown
/// id, 6 for a job that already ended.
/// </summary>
public static class CancelCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Job id." };
        var cmd = new Command("cancel", "Cancel a job.") { id };
        return cmd.WithClient(async (parse, client, ct) =>
        {
            var job = await client.CancelJobAsync(new CancelJobRequest { JobId = parse.GetValue(id)! }, ApiCommand.Call(ct));
            AnsiConsole.MarkupLine($"cancelling job [bold]{Markup.Escape(job.JobId)}[/] ({Markup.Escape(job.Name)}), now {job.State.Markup()}");
            return ApiCommand.ExitCodes.Ok;
        });
    }
}
