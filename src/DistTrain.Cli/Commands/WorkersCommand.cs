using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain workers [--job ID]`: the registered workers: node, device, job, stage, rank and health.</summary>
public static class WorkersCommand
{
    public static Command Create()
    {
        var job = new Option<string?>("--job") { Description = "Only the workers running this job." };
        var cmd = new Command("workers", "List the cluster's workers.") { job };
        return cmd.WithClient(async (parse, client, ct) =>
        {
            var reply = await client.ListWorkersAsync(new ListWorkersRequest { JobId = parse.GetValue(job) ?? "" }, ApiCommand.Call(ct));
            if (reply.Workers.Count == 0) AnsiConsole.WriteLine("no workers");
            else AnsiConsole.Write(JobTables.Workers(reply.Workers));
            return ApiCommand.ExitCodes.Ok;
        });
    }
}
