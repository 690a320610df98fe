using DistTrain.Api.V1;
using Grpc.Core;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace DistTrain.Cli.Views;

/// <summary>
/// Follows a job through the WatchJob stream until it ends: on a terminal, a live progress bar per stage and beneath it
/// a line per worker (rank, worker, step, loss, tokens/s, health from a periodic ListWorkers); in a pipe or log, one line per
/// stage change, evaluation and error, and a progress line per rank every tenth of a stage. A broken stream is
/// resumed after the last event seen; the view gives up only when the server stays unreachable for
/// <see cref="ReconnectWindow"/>. `disttrain watch`, `submit --watch` and the demo use it.
/// </summary>
public static class JobWatchView
{
    public static readonly TimeSpan ReconnectWindow = TimeSpan.FromMinutes(2);
    public static readonly TimeSpan WorkerPollInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Follows <paramref name="jobId"/> on the standard console.</summary>
    /// <returns>The job as it finished.</returns>
    public static Task<JobReply> RunAsync(Jobs.JobsClient client, string jobId, CancellationToken ct) =>
        RunAsync(client, jobId, AnsiConsole.Console, ct);

    public static async Task<JobReply> RunAsync(Jobs.JobsClient client, string jobId, IAnsiConsole console, CancellationToken ct)
    {
        var job = await client.GetJobAsync(new GetJobRequest { JobId = jobId }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
        var model = new WatchModel(job);
        JobReply finished;
        if (console.Profile.Capabilities.Interactive)
        {
            console.MarkupLine($"watching job [bold]{Markup.Escape(jobId)}[/] ({Markup.Escape(job.Name)})");
            finished = await console.Live(LiveBars.Render(model)).AutoClear(false)
                .StartAsync(async ctx =>
                {
                    var bars = new LiveBars(ctx, model);
                    return await FollowAsync(client, jobId, model, _ => bars.Update(), bars.Update, ct);
                });
        }
        else
        {
            console.MarkupLine($"watching job [bold]{Markup.Escape(jobId)}[/] ({Markup.Escape(job.Name)}): {job.State.Markup()}");
            var lines = new EventLines(console, model);
            finished = await FollowAsync(client, jobId, model, lines.Write, lines.WorkersChanged, ct);
        }
        JobTables.WriteJob(console, finished);
        return finished;
    }

    /// <summary>Reads the event stream into <paramref name="model"/>, resuming after the last event on a transient failure.</summary>
    private static async Task<JobReply> FollowAsync(Jobs.JobsClient client, string jobId, WatchModel model,
        Action<JobEvent> onEvent, Action onWorkers, CancellationToken ct)
    {
        using var stopPolling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var polling = PollWorkersAsync(client, jobId, model, onWorkers, stopPolling.Token);
        try
        {
            DateTime? failingSince = null;
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    using var call = client.WatchJob(new WatchJobRequest { JobId = jobId, AfterSequence = model.LastSequence }, cancellationToken: ct);
                    await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                    {
                        failingSince = null;
                        attempt = 0;
                        if (!model.Apply(e)) continue;   // already seen (a resumed stream may repeat)
                        onEvent(e);
                        if (e.EventCase == JobEvent.EventOneofCase.Finished) return e.Finished;
                    }
                    // The stream ended without the job's end (a server going away cleanly): resume it.
                }
                catch (RpcException e) when (Transient(e.StatusCode) && !ct.IsCancellationRequested)
                {
                    failingSince ??= DateTime.UtcNow;
                    if (DateTime.UtcNow - failingSince > ReconnectWindow)
                        throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable,
                            $"lost the event stream of job {jobId} after event {model.LastSequence} and could not resume it within {ReconnectWindow.TotalSeconds:0} s: {e.Status.Detail}"));
                }
                failingSince ??= DateTime.UtcNow;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 250 * (1 << Math.Min(attempt, 5)))), ct);
            }
        }
        finally
        {
            stopPolling.Cancel();
            await polling;
        }
    }

    private static bool Transient(StatusCode code) =>
        code is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown or StatusCode.Aborted or StatusCode.DeadlineExceeded or StatusCode.Cancelled;

    private static async Task PollWorkersAsync(Jobs.JobsClient client, string jobId, WatchModel model, Action onChanged, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var reply = await client.ListWorkersAsync(new ListWorkersRequest { JobId = jobId }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
                if (model.SetWorkers(reply.Workers)) onChanged();
                await Task.Delay(WorkerPollInterval, ct);
            }
            catch (OperationCanceledException) { return; }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested) { return; }
            catch (RpcException)
            {
                // The event stream reports the outage; workers are only decoration.
                try { await Task.Delay(WorkerPollInterval, ct); } catch (OperationCanceledException) { return; }
            }
        }
    }

    /// <summary>Live mode: a bar per stage and, beneath each stage, a line per rank of it; redrawn in place.</summary>
    private sealed class LiveBars(LiveDisplayContext ctx, WatchModel model)
    {
        private const int BarWidth = 30;

        public void Update()
        {
            ctx.UpdateTarget(Render(model));
            ctx.Refresh();
        }

        public static IRenderable Render(WatchModel model)
        {
            var grid = new Grid().AddColumn().AddColumn().AddColumn().AddColumn().AddColumn();
            lock (model)
            {
                foreach (var s in model.Stages)
                {
                    double done = s.State == State.Succeeded ? 1 : s.TotalSteps > 0 ? Math.Clamp((double)s.Step / s.TotalSteps, 0, 1) : 0;
                    grid.AddRow($"[bold]{Markup.Escape(s.Name)}[/]", Markup.Escape(s.Kind), s.State.Markup(), Bar(done, s.State),
                        s.TotalSteps > 0 ? $"{s.Step}/{s.TotalSteps}" : "");
                    foreach (var r in model.Ranks.Where(r => r.Stage == s.Name))
                        grid.AddRow("", $"[grey]rank {r.Rank}[/]", "", Markup.Escape(r.Detail()), "");
                }
            }
            return grid;
        }

        private static string Bar(double done, State state)
        {
            int filled = (int)Math.Round(done * BarWidth);
            string colour = state switch { State.Succeeded => "green", State.Failed => "red", State.Cancelled => "yellow", _ => "blue" };
            return $"[{colour}]{new string('━', filled)}[/][grey]{new string('━', BarWidth - filled)}[/] {done,4:P0}";
        }
    }

    /// <summary>Plain mode: a line per event, progress thinned to every tenth of a stage per rank.</summary>
    private sealed class EventLines(IAnsiConsole console, WatchModel model)
    {
        private readonly HashSet<string> _workers = new();
        private readonly Dictionary<(string, int), int> _tenths = new();

        public void Write(JobEvent e)
        {
            switch (e.EventCase)
            {
                case JobEvent.EventOneofCase.StageChanged:
                    var s = e.StageChanged;
                    console.MarkupLine($"{Glyph(s.State)} stage [bold]{Markup.Escape(s.Name)}[/] ({Markup.Escape(s.Kind)}): {s.State.Markup()}"
                        + (s.Metrics.Count > 0 ? "  " + Markup.Escape(Metrics(s.Metrics)) : "")
                        + (s.Error.Length > 0 ? $" [red]{Markup.Escape(s.Error)}[/]" : ""));
                    break;
                case JobEvent.EventOneofCase.Progress:
                    // One line per rank per tenth of the stage (and the first and last step): a log shows the loss fall.
                    var p = e.Progress;
                    int tenth = p.TotalSteps > 0 ? (p.Step + 1) * 10 / p.TotalSteps : 0;
                    bool first = !_tenths.TryGetValue((p.Stage, p.Rank), out int printed);
                    if (first || tenth > printed || p.Step + 1 == p.TotalSteps)
                    {
                        _tenths[(p.Stage, p.Rank)] = tenth;
                        lock (model) console.WriteLine("  " + model.Rank(p.Stage, p.Rank)!.Describe());
                    }
                    break;
                case JobEvent.EventOneofCase.Evaluation:
                    console.MarkupLine($"  [blue]evaluation[/] {Markup.Escape(e.Evaluation.Stage)} @ step {e.Evaluation.Step}: {Markup.Escape(Metrics(e.Evaluation.Metrics))}");
                    break;
                case JobEvent.EventOneofCase.Checkpoint:
                    console.MarkupLine($"  [grey]checkpoint[/] {Markup.Escape(e.Checkpoint.Stage)} @ step {e.Checkpoint.Step}: {Markup.Escape(e.Checkpoint.Path)}");
                    break;
                case JobEvent.EventOneofCase.Error:
                    console.MarkupLine($"  [red]error:[/] {Markup.Escape(e.Error)}");
                    break;
                case JobEvent.EventOneofCase.Finished:
                    console.MarkupLine($"job [bold]{Markup.Escape(e.Finished.JobId)}[/] {e.Finished.State.Markup()}");
                    break;
            }
        }

        public void WorkersChanged()
        {
            lock (model)
                foreach (var w in model.Workers)
                {
                    string line = $"  worker {w.WorkerId} ({w.Node}) stage {w.Stage} rank {w.Rank}: {w.Health}";
                    if (_workers.Add(line)) console.WriteLine(line);
                }
        }

        private static string Glyph(State s) => s switch
        {
            State.Succeeded => "[green]✓[/]", State.Failed => "[red]✗[/]", State.Cancelled => "[yellow]■[/]", State.Running => "[blue]▶[/]", _ => "·",
        };
    }

    internal static string Metrics(IDictionary<string, double> metrics) =>
        string.Join("  ", metrics.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value:0.####}"));
}

/// <summary>What a watcher knows of a job: stages, per-rank progress, workers, the last event seen. Lock it to read.</summary>
public sealed class WatchModel
{
    private readonly List<StageLine> _stages;
    private readonly Dictionary<(string Stage, int Rank), RankLine> _ranks = new();
    private List<Worker> _workers = new();

    public WatchModel(JobReply job)
    {
        _stages = job.Stages.Select(s => new StageLine(s.Name, s.Kind) { State = s.State, Step = s.Step, TotalSteps = s.TotalSteps }).ToList();
    }

    public long LastSequence { get; private set; }
    public IReadOnlyList<StageLine> Stages => _stages;
    public IEnumerable<RankLine> Ranks => _ranks.Values.OrderBy(r => _stages.FindIndex(s => s.Name == r.Stage)).ThenBy(r => r.Rank);
    public IReadOnlyList<Worker> Workers => _workers;

    public RankLine? Rank(string stage, int rank) => _ranks.GetValueOrDefault((stage, rank));
    public State StageState(string stage) => _stages.FirstOrDefault(s => s.Name == stage)?.State ?? State.Unspecified;

    /// <returns>False for an event already applied (sequence not after the last one).</returns>
    public bool Apply(JobEvent e)
    {
        lock (this)
        {
            if (e.Sequence <= LastSequence) return false;
            LastSequence = e.Sequence;
            switch (e.EventCase)
            {
                case JobEvent.EventOneofCase.StageChanged:
                    var c = e.StageChanged;
                    var stage = Stage(c.Name, c.Kind);
                    stage.State = c.State;
                    stage.Step = c.Step;
                    if (c.TotalSteps > 0) stage.TotalSteps = c.TotalSteps;
                    break;
                case JobEvent.EventOneofCase.Progress:
                    var p = e.Progress;
                    var s = Stage(p.Stage, "");
                    s.Step = Math.Max(s.Step, p.Step + 1);   // p.Step is the 0-based index of the step just done
                    if (p.TotalSteps > 0) s.TotalSteps = p.TotalSteps;
                    if (!_ranks.TryGetValue((p.Stage, p.Rank), out var line)) _ranks[(p.Stage, p.Rank)] = line = new RankLine(p.Stage, p.Rank);
                    line.Step = p.Step + 1;
                    line.TotalSteps = p.TotalSteps;
                    line.Loss = p.Loss;
                    line.TokensPerSecond = p.TokensPerSecond;
                    line.Worker = _workers.FirstOrDefault(w => w.Stage == p.Stage && w.Rank == p.Rank) ?? line.Worker;
                    break;
                case JobEvent.EventOneofCase.Finished:
                    foreach (var f in e.Finished.Stages)
                    {
                        var fs = Stage(f.Name, f.Kind);
                        fs.State = f.State;
                        fs.Step = f.Step;
                        fs.TotalSteps = f.TotalSteps;
                    }
                    break;
            }
            return true;
        }
    }

    /// <returns>True if the set of workers or their health changed.</returns>
    public bool SetWorkers(IEnumerable<Worker> workers)
    {
        lock (this)
        {
            var list = workers.OrderBy(w => w.Stage).ThenBy(w => w.Rank).ToList();
            bool changed = !list.SequenceEqual(_workers);
            _workers = list;
            foreach (var w in list)
                if (_ranks.TryGetValue((w.Stage, w.Rank), out var line)) line.Worker = w;
                else if (w.Stage.Length > 0 && w.Rank >= 0) _ranks[(w.Stage, w.Rank)] = new RankLine(w.Stage, w.Rank) { Worker = w };
            return changed;
        }
    }

    private StageLine Stage(string name, string kind)
    {
        var s = _stages.FirstOrDefault(x => x.Name == name);
        if (s is null) _stages.Add(s = new StageLine(name, kind));
        return s;
    }
}

/// <summary>One stage as the watcher shows it.</summary>
public sealed class StageLine(string name, string kind)
{
    public string Name { get; } = name;
    public string Kind { get; } = kind;
    public State State { get; set; }
    public int Step { get; set; }
    public int TotalSteps { get; set; }
}

/// <summary>One rank of a running stage: its last progress report and the worker that runs it.</summary>
public sealed class RankLine(string stage, int rank)
{
    public string Stage { get; } = stage;
    public int Rank { get; } = rank;
    public int Step { get; set; }
    public int TotalSteps { get; set; }
    public double Loss { get; set; } = double.NaN;
    public double TokensPerSecond { get; set; }
    public Worker? Worker { get; set; }

    /// <summary>The worker and its last progress, e.g. <c>127.0.0.1:4054/cpu: step 12/40 loss 4.1234 20000 tok/s</c>.</summary>
    public string Detail()
    {
        string where = Worker is null ? "" : Worker.WorkerId + (Worker.Health == "up" ? "" : $" ({Worker.Health})") + ": ";
        string progress = double.IsNaN(Loss) ? "waiting" : $"step {Step}/{TotalSteps} loss {Loss:0.0000} {TokensPerSecond:0} tok/s";
        return where + progress;
    }

    public string Describe() => $"{Stage} rank {Rank} {Detail()}";
}
