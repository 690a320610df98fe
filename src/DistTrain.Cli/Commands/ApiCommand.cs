using DistTrain.Cluster.Hosting;
using System.CommandLine;
using DistTrain.Api.Client;
using DistTrain.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Spectre.Console;

namespace DistTrain.Cli.Commands;

/// <summary>
/// What the job API commands (submit, jobs, status, watch, cancel, workers) share: <c>--server</c> and
/// <c>--token</c> with their environment variables, the channel, and one mapping of failures to readable messages
/// and exit codes.
/// </summary>
public static class ApiCommand
{
    public const string ServerVariable = EnvironmentVariables.Server;
    public const string TokenVariable = EnvironmentVariables.Token;

    /// <summary>Exit codes of the API commands, the same for all of them.</summary>
    public static class ExitCodes
    {
        public const int Ok = 0;
        /// <summary>The job ended but did not succeed (watch, submit --watch).</summary>
        public const int JobNotSucceeded = 1;
        /// <summary>Bad input: an invalid spec (every field error is printed), a missing file, a bad flag.</summary>
        public const int InvalidInput = 2;
        public const int NotFound = 3;
        /// <summary>No token, or the wrong one.</summary>
        public const int Unauthenticated = 4;
        /// <summary>The server cannot be reached or did not answer in time.</summary>
        public const int Unreachable = 5;
        /// <summary>The request does not fit the job's state (e.g. cancelling a job that already ended).</summary>
        public const int FailedPrecondition = 6;
        public const int ServerError = 7;
        /// <summary>Ctrl+C or SIGTERM, as shells report a SIGINT.</summary>
        public const int Interrupted = 130;
    }

    /// <summary>Deadline of each unary call; streams reconnect instead.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public static Option<string?> ServerOption() => new("--server")
    {
        Description = $"Job API address, http://host:port or https://host:port (env {ServerVariable}; default {ApiChannel.DefaultServer})",
    };

    public static Option<string?> TokenOption() => new("--token")
    {
        Description = $"Bearer token of the job API (env {TokenVariable})",
    };

    /// <summary>Adds --server and --token to <paramref name="command"/> and runs <paramref name="body"/> with a client.</summary>
    public static Command WithClient(this Command command, Func<ParseResult, Jobs.JobsClient, CancellationToken, Task<int>> body)
    {
        var server = ServerOption();
        var token = TokenOption();
        command.Options.Add(server);
        command.Options.Add(token);
        command.SetAction(async (parse, ct) =>
        {
            var env = NodeEnvironment.ReadClient();
            string address = parse.GetValue(server) ?? env.Server ?? ApiChannel.DefaultServer;
            string? secret = parse.GetValue(token) ?? env.Token;
            // Pipes and logs get wide lines rather than tables wrapped at 80 columns.
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
            if (ApiChannel.SendsTokenInClear(address, secret))
                Console.Error.WriteLine($"disttrain {command.Name}: warning: sending the token in clear text to {address}; use https://");
            GrpcChannel channel;
            try { channel = ApiChannel.Create(address, secret); }
            catch (ArgumentException e) { return Fail(command.Name, e.Message, ExitCodes.InvalidInput); }
            try
            {
                using (channel) return await body(parse, new Jobs.JobsClient(channel), ct);
            }
            catch (InputException e) { return Fail(command.Name, e.Message, ExitCodes.InvalidInput); }
            catch (Exception e) when (ct.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Ctrl+C stops the client only; a submitted job goes on.
                return Fail(command.Name, "interrupted (the job, if any, goes on: disttrain watch ID follows it again)", ExitCodes.Interrupted);
            }
            catch (RpcException e) { return Fail(command.Name, Describe(e, address), ExitCode(e)); }
        });
        return command;
    }

    public static CallOptions Call(CancellationToken ct) => new(deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);

    public static int ExitCode(RpcException e) =>
        Find<System.Security.Authentication.AuthenticationException>(e.Status.DebugException) is not null ? ExitCodes.Unreachable : ExitCode(e.StatusCode);

    public static int ExitCode(StatusCode code) => code switch
    {
        StatusCode.OK => ExitCodes.Ok,
        StatusCode.InvalidArgument or StatusCode.ResourceExhausted or StatusCode.OutOfRange => ExitCodes.InvalidInput,
        StatusCode.NotFound => ExitCodes.NotFound,
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => ExitCodes.Unauthenticated,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitCodes.Unreachable,
        StatusCode.FailedPrecondition => ExitCodes.FailedPrecondition,
        _ => ExitCodes.ServerError,
    };

    /// <summary>A failed call in words a user can act on.</summary>
    public static string Describe(RpcException e, string server) => e.StatusCode switch
    {
        _ when Find<System.Security.Authentication.AuthenticationException>(e.Status.DebugException) is { } tls =>
            $"the TLS handshake with {server} failed ({Innermost(tls)}). Does the server's certificate chain to a CA this machine trusts, and name the host you dialled?",
        StatusCode.Unavailable when e.Status.DebugException is not null =>
            $"cannot reach the job API at {server} ({Innermost(e.Status.DebugException)}). Is a coordinator node serving it there? Set --server or {ServerVariable}.",
        StatusCode.Unavailable => $"the job API at {server} is unavailable: {e.Status.Detail}",
        StatusCode.DeadlineExceeded => $"the job API at {server} did not answer within {CallTimeout.TotalSeconds:0} s",
        StatusCode.Unauthenticated => $"not authenticated: {e.Status.Detail}. Pass the cluster's token with --token or {TokenVariable}.",
        StatusCode.PermissionDenied => $"permission denied: {e.Status.Detail}",
        StatusCode.ResourceExhausted => $"the request is too large for the server: {e.Status.Detail}",
        _ => e.Status.Detail,
    };

    public static int Fail(string command, string message, int code)
    {
        var lines = message.Split('\n');
        Console.Error.WriteLine($"disttrain {command}: {lines[0]}");
        foreach (var line in lines.Skip(1)) Console.Error.WriteLine("  " + line);
        return code;
    }

    private static T? Find<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T found) return found;
        return null;
    }

    private static string Innermost(Exception? e)
    {
        if (e is null) return "no connection";
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message;
    }
}

/// <summary>Bad input to an API command (a flag's value, a file); printed as is, exit code 2.</summary>
public sealed class InputException(string message) : Exception(message);
