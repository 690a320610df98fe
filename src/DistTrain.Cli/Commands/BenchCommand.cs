using System.CommandLine;
using System.Diagnostics;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain bench …`: runs the benchmarks of docs/benchmarks.md, which live in their own executable (disttrain-bench,
/// bench/DistTrain.Bench) so the product never references bench code. Everything after `bench` goes to it unchanged,
/// with this CLI handed over in front (<see cref="ExecutableCommand.HandOver"/>) so its cluster benchmarks start
/// their nodes with the same `disttrain`. Its output is the terminal's; its exit code is ours.
/// </summary>
/// <remarks>
///   disttrain bench --help                      the benchmarks: allreduce, overhead, scaling, startup, data
///   disttrain bench allreduce --sizes 16,64     as documented in docs/benchmarks.md
/// disttrain-bench is found beside this executable, else (a development tree) in bench/DistTrain.Bench's build output of
/// the same configuration, which `dotnet build DistTrain.sln` (test.sh, .ci/run) builds.
/// </remarks>
public static class BenchCommand
{
    public const string Executable = "disttrain-bench";

    /// <summary>Listed in `disttrain --help`; Program.cs hands `disttrain bench …` to <see cref="RunAsync"/> before parsing.</summary>
    public static Command Create()
    {
        var cmd = new Command("bench", "Run benchmarks (results: docs/benchmarks.md); `disttrain bench --help` lists them.") { TreatUnmatchedTokensAsErrors = false };
        cmd.SetAction((r, ct) => RunAsync(r.UnmatchedTokens.ToArray(), ct));
        return cmd;
    }

    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        string here = AppContext.BaseDirectory;
        var places = Places(here).ToList();
        if (places.Select(Command).FirstOrDefault(c => c is not null) is not { } bench)
        {
            Console.Error.WriteLine($"disttrain bench: {Executable} not found in {string.Join(" or ", places)}; build it: dotnet build bench/DistTrain.Bench -c Release (test.sh builds the whole solution)");
            return 2;
        }
        // Not ExecutableCommand.StartInfo: the bench process keeps the caller's environment as it is (no allocator
        // tunables), as when it ran inside this process; its own children get them.
        var psi = new ProcessStartInfo(bench.FileName) { UseShellExecute = false };
        foreach (var a in bench.PrefixArguments.Concat(ExecutableCommand.Self().HandOver()).Concat(args)) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {bench.FileName}");
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C reached the bench too (same process group): give it the time it takes to stop its children.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await process.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException) { process.Kill(entireProcessTree: true); }
            return 130;
        }
        return process.ExitCode;
    }

    /// <summary>
    /// Beside this executable (a published folder), else, in a development tree, the bench's build output of this build's
    /// configuration: from <c>…/bin/CONFIGURATION/TFM/</c> (the CLI's, or a test project's that references it) up to the
    /// folder holding <c>bench/DistTrain.Bench</c>.
    /// </summary>
    private static IEnumerable<string> Places(string here)
    {
        yield return here;
        var tfm = new DirectoryInfo(here);
        if (tfm.Parent?.Parent is not { Name: "bin" } bin) yield break;
        for (var up = bin.Parent; up is not null; up = up.Parent)
            if (Directory.Exists(Path.Combine(up.FullName, "bench", "DistTrain.Bench")))
            {
                yield return Path.Combine(up.FullName, "bench", "DistTrain.Bench", "bin", tfm.Parent.Name, tfm.Name);
                yield break;
            }
    }

    private static ExecutableCommand? Command(string folder)
    {
        // The assembly decides: an apphost without it (a project that references the bench's copies only that) cannot run.
        string apphost = Path.Combine(folder, OperatingSystem.IsWindows() ? Executable + ".exe" : Executable);
        string dll = Path.Combine(folder, Executable + ".dll");
        if (!File.Exists(dll)) return null;
        return File.Exists(apphost) ? new ExecutableCommand(apphost, [])
            : new ExecutableCommand(Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet", [dll]);
    }
}
