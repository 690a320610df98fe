using System.Diagnostics;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>Runs the real `disttrain` executable (the referenced build) as a child process, with a deadline.</summary>
public static class CliProcess
{
    public static (int ExitCode, string Output, string Error) Run(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "disttrain.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DISTTRAIN_TORCH_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"disttrain {string.Join(' ', args)} did not finish within {timeout}");
        }
        return (p.ExitCode, output.Result, error.Result);
    }
}
