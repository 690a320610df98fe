using System.Diagnostics;

namespace DistTrain.Api.Tests.Support;

/// <summary>Runs the real `disttrain` executable (the referenced build) as a child process, with a deadline.</summary>
public static class Disttrain
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
    }

    public static async Task<Result> RunAsync(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "disttrain.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The test's own environment must not leak a server or token into the command under test.
        psi.Environment.Remove("DISTTRAIN_SERVER");
        psi.Environment.Remove("DISTTRAIN_TOKEN");
        psi.Environment.Remove("DISTTRAIN_API_TOKEN");
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            throw new TimeoutException($"disttrain {string.Join(' ', args)} did not finish within {timeout}: {await output}{await error}");
        }
        return new Result(p.ExitCode, await output, await error);
    }

    public static Task<Result> RunAsync(params string[] args) => RunAsync(TimeSpan.FromMinutes(2), null, args);
}
