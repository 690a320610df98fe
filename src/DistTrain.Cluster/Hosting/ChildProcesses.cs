using System.Diagnostics;

namespace DistTrain.Cluster.Hosting;

/// <summary>How to start another copy of the <c>disttrain</c> executable: the apphost, or <c>dotnet disttrain.dll</c>.</summary>
public sealed record ExecutableCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>This very process's executable (works under the apphost and under <c>dotnet x.dll</c>).</summary>
    public static ExecutableCommand Self()
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? new ExecutableCommand(process, [System.Reflection.Assembly.GetEntryAssembly()!.Location])
            : new ExecutableCommand(process, []);
    }

    /// <summary><c>dotnet PATH</c>: how tests start the CLI they reference.</summary>
    public static ExecutableCommand Dll(string dllPath) => new("dotnet", [dllPath]);

    /// <summary>The option that hands a command to a child process which starts it in turn (the CLI to disttrain-bench).</summary>
    public const string HandOverOption = "--disttrain";

    /// <summary>This command as leading arguments, <c>--disttrain FILE [--disttrain PREFIX]…</c>, for <see cref="TakeHandedOver"/>.</summary>
    public IEnumerable<string> HandOver() => new[] { FileName }.Concat(PrefixArguments).SelectMany(a => new[] { HandOverOption, a });

    /// <summary>The command <see cref="HandOver"/> put in front of <paramref name="args"/> (null if none), and the arguments after it.</summary>
    public static (ExecutableCommand? Command, string[] Arguments) TakeHandedOver(string[] args)
    {
        var parts = new List<string>();
        int i = 0;
        for (; i + 1 < args.Length && args[i] == HandOverOption; i += 2) parts.Add(args[i + 1]);
        return (parts.Count == 0 ? null : new ExecutableCommand(parts[0], parts[1..]), args[i..]);
    }

    public ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var psi = new ProcessStartInfo(FileName) { UseShellExecute = false };
        foreach (var a in PrefixArguments.Concat(arguments)) psi.ArgumentList.Add(a);
        foreach (var (name, value) in AllocatorEnvironment)
            if (Environment.GetEnvironmentVariable(name) is null) psi.Environment[name] = value;   // the caller's own setting wins
        return psi;
    }

    /// <summary>
    /// glibc malloc tunables for a training process (read by glibc at start-up, so they must be set by whoever starts
    /// it: here for local children, as ENV in the images). A step's logits-sized buffers (32 MiB for the bench model)
    /// sit at glibc's 32 MiB dynamic mmap ceiling, so by default each is mapped, zero-filled by page faults and unmapped
    /// every step; a fixed threshold and trim threshold of 1 GiB keep them on the heap for reuse. One arena: a thread
    /// other than the first gets an arena of its own made of 64 MiB heaps, and a heap holding one such buffer is
    /// unmapped whenever it empties, whatever the trim threshold, so a device thread that happened to get its own
    /// arena faulted its buffers in again every step (about 10,000 faults a step) while one on the main arena did not:
    /// ranks of one job ran at different speeds, decided at random at start. Measured in docs/benchmarks.md.
    /// Without these settings everything still works.
    /// </summary>
    public static readonly IReadOnlyList<(string Name, string Value)> AllocatorEnvironment =
    [
        ("MALLOC_MMAP_THRESHOLD_", "1073741824"),
        ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
        ("MALLOC_ARENA_MAX", "1"),
    ];
}

/// <summary>
/// Child processes that die with their owner: every one is killed on <see cref="Dispose"/>, whatever happened.
/// Their standard output and error go to a log file each (never a pipe nobody reads, which would block them).
/// </summary>
public sealed class ChildProcesses : IDisposable
{
    private readonly List<(Process Process, StreamWriter Log, string Name)> _children = new();

    public int Count => _children.Count;

    public Process Start(ProcessStartInfo psi, string name, string logPath)
    {
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.RedirectStandardInput = true;   // closed when we exit, so an orphan notices
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        void Write(string? line) { if (line is null) return; lock (log) log.WriteLine(line); }
        p.OutputDataReceived += (_, e) => Write(e.Data);
        p.ErrorDataReceived += (_, e) => Write(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _children.Add((p, log, name));
        return p;
    }

    public Process this[int i] => _children[i].Process;

    /// <summary>SIGKILL, as <c>kill -9</c> would: no shutdown, sockets dropped by the kernel.</summary>
    public void Kill(int i) => _children[i].Process.Kill(entireProcessTree: true);

    /// <summary>Children that exited, with their exit codes (for error messages).</summary>
    public IEnumerable<string> Exited() => _children.Where(c => c.Process.HasExited).Select(c => $"{c.Name} exited with {c.Process.ExitCode}");

    public void Dispose()
    {
        foreach (var (p, log, _) in _children)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            try { p.WaitForExit(5000); } catch (InvalidOperationException) { }
            p.Dispose();
            lock (log) log.Dispose();
        }
        _children.Clear();
    }
}
