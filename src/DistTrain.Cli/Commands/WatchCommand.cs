using System.CommandLine;
using DistTrain.Api.V1;
using DistTrain.Cli.Views;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain watch ID [--server URL] [--token T]`: follows a job live (a bar per stage, a line per worker) until it
/// ends, resuming a broken stream; exit 0 if the job succeeded, 1 if it failed or was cancelled. Watching a job that
/// already ended replays its events and exits at once.
/// </summary>
public static class WatchCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Job id (from `disttrain submit` or `disttrain jobs`)." };
        var cmd = new Command("watch", "Follow a job until it ends.") { id };
        return cmd.WithClient(async (parse, client, ct) => ExitCode(await JobWatchView.RunAsync(client, parse.GetValue(id)!, ct)));
    }

    public static int ExitCode(JobReply finished) =>
        finished.State == State.Succeeded ? ApiCommand.ExitCodes.Ok : ApiCommand.ExitCodes.JobNotSucceeded;
}
