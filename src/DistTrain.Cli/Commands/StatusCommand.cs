using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain status ID`: one job's state and each stage's (step, final metrics); exit 3 for an unknown id.</summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Job id." };
        var cmd = new Command("status", "Show one job and its stages.") { id };
        return cmd.WithClient(async (parse, client, ct) =>
        {
            var job = await client.GetJobAsync(new GetJobRequest { JobId = parse.GetValue(id)! }, ApiCommand.Call(ct));
            JobTables.WriteJob(AnsiConsole.Console, job);
            return ApiCommand.ExitCodes.Ok;
        });
    }
}
