using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DistTrain.Cluster.Hosting;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c> package, which <c>.ci/run</c> installs) as a child process on a
/// free loopback port, scraping the given targets every second, with its HTTP API. Disposing it kills the process.
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    public const string Binary = "/usr/bin/prometheus";
    public const string Promtool = "/usr/bin/promtool";
    private readonly ChildProcesses _process = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private PrometheusServer(int port, string logPath)
    {
        Port = port;
        LogPath = logPath;
        _http.BaseAddress = new Uri($"http://127.0.0.1:{port}/");
    }

    public int Port { get; }
    public string LogPath { get; }

    /// <summary>Fails the test with what to install when the binaries are missing (CI installs them).</summary>
    public static void RequireInstalled()
    {
        foreach (var tool in new[] { Binary, Promtool })
            Assert.True(File.Exists(tool), $"{tool} not found: install Debian's prometheus package " +
                "(`apt-get install -y --no-install-recommends prometheus`; .ci/run does this when it is missing)");
    }

    public static PrometheusServer Start(string workDir, IReadOnlyList<string> targets, string ruleFile)
    {
        RequireInstalled();
        Directory.CreateDirectory(workDir);
        string config = Path.Combine(workDir, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files:
              - {ruleFile}
            scrape_configs:
              - job_name: disttrain
                static_configs:
                  - targets: [{string.Join(", ", targets.Select(t => $"'{t}'"))}]
            """);
        var server = new PrometheusServer(LoopbackPorts.Free(), Path.Combine(workDir, "prometheus.log"));
        var psi = new ProcessStartInfo(Binary) { UseShellExecute = false };
        foreach (var a in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(workDir, "tsdb")}",
                     $"--web.listen-address=127.0.0.1:{server.Port}", "--log.level=warn" })
            psi.ArgumentList.Add(a);
        server._process.Start(psi, "prometheus", server.LogPath);
        return server;
    }

    /// <summary>Waits until Prometheus is ready and every target was scraped successfully (<c>up == 1</c>).</summary>
    public async Task WaitForTargetsAsync(int count, TimeSpan timeout)
    {
        await WaitUntilAsync(async () => (await InstantAsync("up == 1")).Count == count, timeout, $"{count} targets up");
    }

    /// <summary>Polls a condition on Prometheus's answers (its state changes only at scrapes; there is no event to wait on).</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            if (_process[0].HasExited) throw new InvalidOperationException($"prometheus exited with {_process[0].ExitCode}: {ReadLog()}");
            try { if (await condition()) return; }
            catch (HttpRequestException e) { last = e.Message; }   // not listening yet
            await Task.Delay(250);
        }
        throw new TimeoutException($"Prometheus: not {what} within {timeout.TotalSeconds:F0} s {last} (log: {ReadLog()})");
    }

    /// <summary>An instant query now: each series' labels and value.</summary>
    public async Task<IReadOnlyList<(Dictionary<string, string> Labels, double Value)>> InstantAsync(string query)
    {
        var data = await GetAsync($"api/v1/query?query={Uri.EscapeDataString(query)}");
        return data.GetProperty("result").EnumerateArray()
            .Select(r => (Labels(r), ParseValue(r.GetProperty("value")[1].GetString()!))).ToList();
    }

    /// <summary>A range query, as Grafana runs a panel: each series' labels and values.</summary>
    public async Task<IReadOnlyList<(Dictionary<string, string> Labels, double[] Values)>> RangeAsync(string query, DateTime start, DateTime end, TimeSpan step)
    {
        static string T(DateTime t) => (new DateTimeOffset(t).ToUnixTimeMilliseconds() / 1000.0).ToString(CultureInfo.InvariantCulture);
        var data = await GetAsync($"api/v1/query_range?query={Uri.EscapeDataString(query)}&start={T(start)}&end={T(end)}&step={step.TotalSeconds.ToString(CultureInfo.InvariantCulture)}");
        return data.GetProperty("result").EnumerateArray()
            .Select(r => (Labels(r), r.GetProperty("values").EnumerateArray().Select(v => ParseValue(v[1].GetString()!)).ToArray())).ToList();
    }

    /// <summary>Loaded rule groups: each rule's name, health and last error.</summary>
    public async Task<IReadOnlyList<(string Name, string Health, string? Error)>> RulesAsync()
    {
        var data = await GetAsync("api/v1/rules");
        return data.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray())
            .Select(r => (r.GetProperty("name").GetString()!, r.GetProperty("health").GetString()!,
                r.TryGetProperty("lastError", out var e) ? e.GetString() : null)).ToList();
    }

    private async Task<JsonElement> GetAsync(string path)
    {
        using var response = await _http.GetAsync(path);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("success", doc.RootElement.GetProperty("status").GetString());
        return doc.RootElement.GetProperty("data").Clone();
    }

    private static Dictionary<string, string> Labels(JsonElement r) =>
        r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);

    private static double ParseValue(string v) => v switch
    {
        "NaN" => double.NaN, "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity,
        _ => double.Parse(v, CultureInfo.InvariantCulture),
    };

    /// <summary>Runs promtool with a timeout; returns its exit code and output.</summary>
    public static (int ExitCode, string Output) RunPromtool(string workDir, params string[] args)
    {
        RequireInstalled();
        var psi = new ProcessStartInfo(Promtool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"promtool {string.Join(' ', args)} ran over 60 s");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private string ReadLog()
    {
        try
        {
            using var reader = new StreamReader(new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            string text = reader.ReadToEnd();
            return text.Length > 2000 ? text[^2000..] : text;
        }
        catch (IOException) { return "(no log)"; }
    }


    public void Dispose()
    {
        _process.Dispose();
        _http.Dispose();
    }
}
