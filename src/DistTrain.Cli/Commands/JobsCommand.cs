using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>`disttrain jobs [--state running] [--name NAME] [--limit N]`: the cluster's jobs, newest first.</summary>
public static class JobsCommand
{
    public static Command Create()
    {
        var state = new Option<string?>("--state") { Description = "Only jobs in this state: queued, running, succeeded, failed, cancelled." };
        var name = new Option<string?>("--name") { Description = "Only jobs with this exact name." };
        var limit = new Option<int>("--limit") { Description = "At most this many jobs (0: the server's default).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("jobs", "List the cluster's jobs.") { state, name, limit };
        return cmd.WithClient(async (parse, client, ct) =>
        {
            var request = new ListJobsRequest { Name = parse.GetValue(name) ?? "", Limit = parse.GetValue(limit), State = ParseState(parse.GetValue(state)) };
            var reply = await client.ListJobsAsync(request, ApiCommand.Call(ct));
            if (reply.Jobs.Count == 0) AnsiConsole.WriteLine("no jobs");
            else AnsiConsole.Write(JobTables.Jobs(reply.Jobs));
            return ApiCommand.ExitCodes.Ok;
        });
    }

    private static State ParseState(string? text) => text?.ToLowerInvariant() switch
    {
        null or "" => State.Unspecified,
        "queued" => State.Queued,
        "running" => State.Running,
        "succeeded" => State.Succeeded,
        "failed" => State.Failed,
        "cancelled" => State.Cancelled,
        _ => throw new InputException($"unknown state '{text}' (queued, running, succeeded, failed, cancelled)"),
    };
}
