using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Bench;

/// <summary>
/// `disttrain bench allreduce`: spawns real child processes on loopback, one per rank, and compares our
/// all-reduce with the raw TCP transport measured in the same run between the same processes.
/// In coordinator mode this (parent) process plays the coordinator and hosts the reducer.
/// </summary>
public static class AllReduceBench
{
    /// <summary>Starts this very executable again with <paramref name="childArgs"/> (works for apphost and `dotnet x.dll`).</summary>
    public static ChildLauncher Self(params string[] childArgs) => () =>
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var psi = new ProcessStartInfo(process);
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
            psi.ArgumentList.Add(System.Reflection.Assembly.GetEntryAssembly()!.Location);
        foreach (var a in childArgs) psi.ArgumentList.Add(a);
        return psi;
    };

    public static async Task<IReadOnlyList<AllReduceBenchRow>> RunAsync(AllReduceBenchOptions options, ChildLauncher launcher,
        TextWriter progress, CancellationToken ct = default)
    {
        var rows = new List<AllReduceBenchRow>();
        long generation = 0;
        foreach (var mode in options.Modes)
            foreach (int procs in options.Procs)
                foreach (var integrity in options.Integrity)
                foreach (var transport in options.Transports)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    timeout.CancelAfter(options.GroupTimeout);
                    var o = options with { DataPlane = options.DataPlane with { Integrity = integrity, SharedMemory = transport == "shm" } };
                    var groupRows = await RunGroupAsync(o, launcher, mode, procs, ++generation, timeout.Token);
                    foreach (var row in groupRows) progress.WriteLine(FormatRow(row));
                    rows.AddRange(groupRows);
                }
        return rows;
    }

    private static async Task<List<AllReduceBenchRow>> RunGroupAsync(AllReduceBenchOptions o, ChildLauncher launcher,
        AllReduceAlgorithm mode, int procs, long generation, CancellationToken ct)
    {
        int[] sizes = o.SizesMb.ToArray();
        int[] iterations = sizes.Select(o.Iterations).ToArray();
        using var children = new ChildSet();
        for (int r = 0; r < procs; r++) children.Start(launcher());
        var ports = new ChildPorts[procs];
        for (int r = 0; r < procs; r++) ports[r] = BenchWire.Read<ChildPorts>(await children.ReadLineAsync(r, ct));

        using var reducerListener = DataPlaneListener.Start(IPAddress.Loopback);
        var hub = new TcpListener(IPAddress.Loopback, 0);
        hub.Start();
        try
        {
            string job = $"bench-{Environment.ProcessId}";
            var secret = GroupSecret.Generate();
            for (int r = 0; r < procs; r++)
                await children.WriteLineAsync(r, BenchWire.Write(new ChildSetup(job, generation, r, procs, mode, o.Wire,
                    ports.Select(p => p.DataPort).ToArray(), ports.Select(p => p.RawPort).ToArray(), reducerListener.Port,
                    ((IPEndPoint)hub.LocalEndpoint).Port, sizes, iterations,
                    o.DataPlane.BucketBytes, o.DataPlane.SegmentBytes, o.DataPlane.SocketBufferBytes, o.DataPlane.Integrity, secret.ToBytes(), o.DataPlane.SharedMemory)));

            CoordinatorReducer? reducer = null;
            Task? hubTraffic = null;
            if (mode == AllReduceAlgorithm.Coordinator)
            {
                reducer = await CoordinatorReducer.StartAsync(new ReducerSpec(job, generation, procs, secret), reducerListener, o.DataPlane, ct);
                long[] perIteration = sizes.Select(s => ((long)s << 18) * o.Wire.BytesPerElement()).ToArray();
                hubTraffic = RawHub.ServeAsync(hub, procs, perIteration, iterations, ct);
            }
            using var _ = reducer;

            var rows = new List<AllReduceBenchRow>();
            for (int i = 0; i < sizes.Length; i++)
            {
                var results = new ChildResult[procs];
                for (int r = 0; r < procs; r++) results[r] = BenchWire.Read<ChildResult>(await children.ReadLineAsync(r, ct));
                // The coordinator process carries what every worker exchanges with the reducer (nothing in ring mode).
                long coordBytes = results.Sum(x => x.ReducerBytes);
                // Per iteration the slowest rank sets the pace; over iterations the median shrugs off noise.
                double ours = Median(Enumerable.Range(0, iterations[i]).Select(k => results.Max(x => x.OursSeconds[k])));
                double raw = Median(Enumerable.Range(0, iterations[i]).Select(k => results.Max(x => x.RawSeconds[k])));
                double bytes = (double)sizes[i] * (1 << 20);
                double algBw = bytes / ours / 1e9, busBw = algBw * AllReduceBenchRow.BusFactor(procs);
                double tcpBusBw = bytes / raw / 1e9 * AllReduceBenchRow.BusFactor(procs);
                rows.Add(new AllReduceBenchRow(mode.ToString().ToLowerInvariant(), procs, sizes[i], iterations[i],
                    o.Wire.ToString().ToLowerInvariant(), o.DataPlane.Integrity.Name(), o.DataPlane.SharedMemory ? "shm" : "tcp", algBw, busBw, tcpBusBw, raw / ours, coordBytes));
            }
            if (hubTraffic is not null) await hubTraffic.WaitAsync(ct);
            await children.WaitForExitAsync(ct);
            return rows;
        }
        finally { hub.Stop(); }
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    public static string TableHeader() =>
        "| mode | procs | size MB | iters | wire | integrity | transport | algBW GB/s | busBW GB/s | TCP busBW GB/s | bus_bw_ratio_vs_tcp | coordinator bytes/step |\n" +
        "|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|";

    public static string FormatRow(AllReduceBenchRow r) => string.Create(CultureInfo.InvariantCulture,
        $"| {r.Mode} | {r.Procs} | {r.SizeMb} | {r.Iterations} | {r.Wire} | {r.Integrity} | {r.Transport} | {r.AlgBwGbps:F2} | {r.BusBwGbps:F2} | {r.TcpBusBwGbps:F2} | {r.BusBwRatioVsTcp:F2} | {r.CoordinatorBytesPerStep:N0} |");

    public static string ToJson(IReadOnlyList<AllReduceBenchRow> rows) => BenchWire.Write(rows);
}

/// <summary>The coordinator side of the raw baseline: per worker, receive S while sending S back once S starts arriving.</summary>
internal static class RawHub
{
    public static async Task ServeAsync(TcpListener hub, int procs, long[] bytesPerIteration, int[] timedIterations, CancellationToken ct)
    {
        var sockets = new Socket[procs];
        for (int i = 0; i < procs; i++)
        {
            var s = await hub.AcceptSocketAsync(ct);
            var id = new byte[4];
            if (s.Receive(id) != 4) throw new InvalidDataException("Baseline worker sent no rank.");
            sockets[BitConverter.ToInt32(id)] = s;
        }
        // Each size runs one warm-up and then its timed iterations; the hub mirrors that sequence.
        var plan = bytesPerIteration.SelectMany((b, i) => Enumerable.Repeat(b, timedIterations[i] + 1)).ToArray();
        var threads = sockets.SelectMany(s =>
        {
            // Like a reducer, the hub may only answer an iteration once that worker's bytes started arriving.
            var started = new SemaphoreSlim(0);
            return new[]
            {
                Task.Factory.StartNew(() =>
                {
                    var buf = GC.AllocateArray<byte>(512 << 10, pinned: true);
                    foreach (long b in plan)
                    {
                        Pump(s, buf, Math.Min(buf.Length, b), send: false);
                        started.Release();
                        Pump(s, buf, b - Math.Min(buf.Length, b), send: false);
                    }
                }, TaskCreationOptions.LongRunning),
                Task.Factory.StartNew(() =>
                {
                    var buf = GC.AllocateArray<byte>(512 << 10, pinned: true);
                    foreach (long b in plan)
                    {
                        started.Wait(ct);
                        Pump(s, buf, b, send: true);
                    }
                }, TaskCreationOptions.LongRunning),
            };
        }).ToArray();
        try { await Task.WhenAll(threads).WaitAsync(ct); }
        finally { foreach (var s in sockets) s.Dispose(); }
    }

    private static void Pump(Socket socket, byte[] buffer, long bytes, bool send)
    {
        while (bytes > 0)
        {
            int n = (int)Math.Min(buffer.Length, bytes);
            int done = send ? socket.Send(buffer, 0, n, SocketFlags.None) : socket.Receive(buffer, 0, n, SocketFlags.None);
            if (done <= 0) throw new EndOfStreamException("Baseline worker closed.");
            bytes -= done;
        }
    }
}

/// <summary>Child processes of one bench group; every one is killed on dispose, whatever happened.</summary>
internal sealed class ChildSet : IDisposable
{
    private readonly List<Process> _processes = new();
    private readonly List<StringBuilder> _stderr = new();

    public void Start(ProcessStartInfo psi)
    {
        psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {psi.FileName}.");
        var err = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (err) err.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        _processes.Add(p);
        _stderr.Add(err);
    }

    public async Task<string> ReadLineAsync(int i, CancellationToken ct)
    {
        var line = await _processes[i].StandardOutput.ReadLineAsync(ct);
        if (line is null)
        {
            await _processes[i].WaitForExitAsync(ct);
            string err;
            lock (_stderr[i]) err = _stderr[i].ToString();
            throw new InvalidOperationException($"Bench child {i} exited with {_processes[i].ExitCode}: {err}");
        }
        return line;
    }

    public async Task WriteLineAsync(int i, string line)
    {
        await _processes[i].StandardInput.WriteLineAsync(line);
        await _processes[i].StandardInput.FlushAsync();
    }

    /// <summary>Kills one child outright (failure tests: a rank that dies).</summary>
    public void Kill(int i) => _processes[i].Kill(entireProcessTree: true);

    public async Task WaitForExitAsync(CancellationToken ct)
    {
        // Children wait on stdin only to notice a dead parent; closing it is their cue that we are done too.
        foreach (var p in _processes) p.StandardInput.Close();
        foreach (var p in _processes) await p.WaitForExitAsync(ct);
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.Dispose();
        }
    }
}
