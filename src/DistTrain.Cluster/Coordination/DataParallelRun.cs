using System.Security.Cryptography;
using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>A worker the coordinator can place in a group.</summary>
public sealed record WorkerSlot(string WorkerId, string Node, string Device, DataPlaneEndpoint DataPlane);

/// <summary>Limits of one data-parallel stage run.</summary>
/// <param name="Window">Steps issued per RunSteps; ranks stay in lock step through the all-reduce in between.</param>
public sealed record RunLimits(int TotalSteps, int MinWorkers, int MaxWorkers, int MaxRestarts, int CheckpointEvery, int ChecksumEvery, int Window = 10);

/// <summary>How a run's groups move gradients; <see cref="Reducer"/> is the coordinator's endpoint in coordinator mode.</summary>
public sealed record RunTransport(GradientAggregation Aggregation, GradientWire Wire, DataPlaneEndpoint? Reducer)
{
    public static readonly RunTransport Ring = new(GradientAggregation.Ring, GradientWire.Fp32, null);
}

/// <summary>The phases of a data-parallel run. Transitions are written out once, in <see cref="DataParallelRun"/>.</summary>
public enum RunPhase { WaitingForWorkers, Preparing, Running, Checkpointing, Completed, Failed, Stopped }

/// <summary>Where a run picks up: a checkpoint another coordinator incarnation recorded for this stage.</summary>
public sealed record RunResume(string Checkpoint, int Step);

/// <summary>What the coordinator actor must do as a result of a run's decision.</summary>
public abstract record RunCommand;
/// <summary>Send <see cref="Message"/> to the worker <see cref="WorkerId"/>.</summary>
public sealed record SendTo(string WorkerId, IWorkerProtocol Message) : RunCommand;
/// <summary>
/// The run has a new group (a generation of a training run; the first shard holders of an inference run): tell the job
/// manager, and the metrics when its ranks step together (<paramref name="Lockstep"/>). <paramref name="RestartsUsed"/>
/// counts the stage's restarts so far.
/// </summary>
public sealed record GroupFormed(int Generation, IReadOnlyList<string> Workers, int RestartsUsed, bool Lockstep) : RunCommand;
/// <summary>A step of the current group, accepted: pass it on to the job manager and the metrics.</summary>
public sealed record StepReported(StepCompleted Step) : RunCommand;
/// <summary>A checkpoint of the current group, recorded as the run's latest: pass it on to the job manager.</summary>
public sealed record CheckpointReported(CheckpointSaved Checkpoint) : RunCommand;
/// <summary>
/// Coordinator aggregation: open the reducer's slot for a generation of <paramref name="WorldSize"/> ranks that prove
/// <paramref name="Secret"/>, the generation's data-plane secret (the one its PrepareGroup messages carry).
/// </summary>
public sealed record StartReducer(int Generation, int WorldSize, GradientWire Wire, byte[] Secret) : RunCommand
{
    /// <summary>Never prints the secret.</summary>
    public override string ToString() => $"StartReducer {{ Generation = {Generation}, WorldSize = {WorldSize}, Wire = {Wire}, Secret = redacted }}";
}
/// <summary>Coordinator aggregation: close the reducer's slot of a generation that ended.</summary>
public sealed record EndReducer(int Generation) : RunCommand;
/// <summary>The run reached a terminal phase; <paramref name="Stopped"/>: it was stopped on request at a step boundary.</summary>
public sealed record Finished(bool Succeeded, string Summary, bool Stopped = false) : RunCommand;

/// <summary>
/// One stage the coordinator runs on its workers: a data-parallel training run or a sharded inference run. Pure logic;
/// every decision is a list of <see cref="RunCommand"/>s the coordinator actor carries out.
/// </summary>
public interface IStageRun
{
    RunPhase Phase { get; }
    /// <summary>Workers the run holds now; no other run may use them.</summary>
    IReadOnlyList<WorkerSlot> Members { get; }
    /// <summary>The last checkpoint a training run saved (null for inference).</summary>
    string? LastCheckpoint { get; }
    int RestartsUsed { get; }
    /// <summary>Workers became free (registered, or released by another run).</summary>
    IReadOnlyList<RunCommand> OnWorkersAvailable(IReadOnlyCollection<WorkerSlot> workers);
    /// <summary>A worker died, was removed from the cluster, or stopped answering.</summary>
    IReadOnlyList<RunCommand> OnWorkerLost(string workerId, string reason);
    /// <summary>Stop at the next safe point (a cancelled job), keeping what is done.</summary>
    IReadOnlyList<RunCommand> RequestStop(string reason);
    /// <summary>Give the run up (no workers came).</summary>
    IReadOnlyList<RunCommand> Abandon(string reason);
    /// <summary>Members the run is waiting on right now: the suspects when progress stalls past a deadline.</summary>
    IReadOnlyList<WorkerSlot> Awaited();
}

/// <summary>
/// The coordinator's state for one data-parallel stage: membership, generations, steps, checkpoints and
/// failures, as pure logic (no actors, no clock), so every transition is unit-tested without an ActorSystem.
///
/// Transitions:
///   WaitingForWorkers --enough workers--> Preparing(g)
///   Preparing(g) --all ranks prepared--> Running(g)            (RunSteps window issued)
///   Running(g) --window done, checkpoint due or join pending--> Checkpointing(g)
///   Running(g) --window done--> Running(g)                       (next window)
///   Running(g) --last step done--> Checkpointing(g) --saved--> Completed
///   Checkpointing(g) --saved, join pending--> Preparing(g+1)      (larger group, same step)
///   Checkpointing(g) --saved--> Running(g)
///   any live phase --member lost/failed, budget left--> Preparing(g+1) from the last checkpoint (or WaitingForWorkers)
///   any live phase --member lost/failed, budget spent--> Failed
///   Running(g) --checksums differ--> Failed (names the diverged rank)
///   WaitingForWorkers | Preparing --stop requested--> Stopped     (nothing new to keep)
///   Running(g) --stop requested, window done--> Checkpointing(g) --saved--> Stopped
///   Checkpointing(g) --stop requested, saved--> Stopped
/// </summary>
public sealed class DataParallelRun : IStageRun
{
    private readonly RunLimits _limits;
    private readonly RunTransport _transport;
    private readonly string _jobId, _stage, _specYaml;
    private readonly bool _quick;
    private readonly Dictionary<string, WorkerSlot> _free = new();
    private List<WorkerSlot> _members = new();
    private readonly HashSet<int> _prepared = new();
    private readonly Dictionary<int, Dictionary<int, string?>> _stepReports = new();   // step -> rank -> checksum
    private int _windowEnd;
    private bool _joinPending;
    private string? _stopReason;
    private readonly int _firstGeneration;

    /// <param name="resume">Start from this checkpoint instead of step 0 (a stage re-dispatched after a coordinator restart).</param>
    /// <param name="firstGeneration">Generations start after this number, so messages of an earlier incarnation's groups never match.</param>
    /// <param name="restartsUsed">Restarts earlier attempts used (from the job journal): the budget is the stage's, not the attempt's.</param>
    public DataParallelRun(string jobId, string stage, string specYaml, RunLimits limits, RunTransport? transport = null, bool quick = false,
        RunResume? resume = null, int firstGeneration = 0, int restartsUsed = 0)
    {
        RestartsUsed = restartsUsed;
        if (resume is not null) (LastCheckpoint, LastCheckpointStep, NextStep) = (resume.Checkpoint, resume.Step, resume.Step);
        Generation = _firstGeneration = firstGeneration;
        _quick = quick;
        _transport = transport ?? RunTransport.Ring;
        if (_transport.Aggregation == GradientAggregation.Coordinator && _transport.Reducer is null)
            throw new ArgumentException("coordinator aggregation needs the reducer endpoint");
        if (limits.MinWorkers < 1 || limits.MaxWorkers < limits.MinWorkers)
            throw new ArgumentException($"workers must satisfy 1 <= min ({limits.MinWorkers}) <= max ({limits.MaxWorkers})");
        (_jobId, _stage, _specYaml, _limits) = (jobId, stage, specYaml, limits);
    }

    public RunPhase Phase { get; private set; } = RunPhase.WaitingForWorkers;
    public int Generation { get; private set; }

    /// <summary>
    /// The current generation's data-plane secret: 32 bytes from the OS CSPRNG, drawn anew each time a group forms, handed
    /// to its members in PrepareGroup and to the reducer, kept in memory only (never journaled or logged).
    /// </summary>
    public byte[] GroupSecret { get; private set; } = [];
    public int NextStep { get; private set; }
    public int RestartsUsed { get; private set; }
    public string? LastCheckpoint { get; private set; }
    public int LastCheckpointStep { get; private set; }
    public IReadOnlyList<WorkerSlot> Members => _members;
    public string? FailureReason { get; private set; }
    private bool Live => Phase is not (RunPhase.Completed or RunPhase.Failed or RunPhase.Stopped);

    /// <summary>Coordinator aggregation: the reducer takes part in every generation.</summary>
    private bool ViaReducer => _transport.Aggregation == GradientAggregation.Coordinator;

    /// <summary>A group of this run was formed (its reducer slot, if any, is open).</summary>
    private bool Formed => Generation > _firstGeneration;

    /// <summary>A worker became free (registered, or released by another run).</summary>
    public IReadOnlyList<RunCommand> OnWorkerAvailable(WorkerSlot worker) => OnWorkersAvailable([worker]);

    /// <summary>Several workers became free at once; a group formed now takes all of them (up to the maximum).</summary>
    public IReadOnlyList<RunCommand> OnWorkersAvailable(IReadOnlyCollection<WorkerSlot> workers)
    {
        if (!Live) return [];
        foreach (var w in workers.Where(w => _members.All(m => m.WorkerId != w.WorkerId)))
            _free[w.WorkerId] = w;
        if (Phase == RunPhase.WaitingForWorkers) return TryForm();
        if (_free.Count > 0 && _members.Count < _limits.MaxWorkers) _joinPending = true;   // admitted at the next window boundary
        return [];
    }

    /// <summary>A worker died, was removed from the cluster, or its session failed.</summary>
    public IReadOnlyList<RunCommand> OnWorkerLost(string workerId, string reason)
    {
        _free.Remove(workerId);
        if (!Live || _members.All(m => m.WorkerId != workerId)) return [];
        RestartsUsed++;
        var survivors = _members.Where(m => m.WorkerId != workerId).ToList();
        _members = survivors;
        if (RestartsUsed > _limits.MaxRestarts)
            return Fail($"worker {workerId} lost ({reason}); restart budget of {_limits.MaxRestarts} spent");
        var commands = new List<RunCommand>();
        foreach (var s in survivors)
            commands.Add(new SendTo(s.WorkerId, new AbortGroup(_jobId, _stage, Generation, $"worker {workerId} lost: {reason}")));
        foreach (var s in survivors) _free[s.WorkerId] = s;
        _members = new List<WorkerSlot>();
        NextStep = LastCheckpointStep;   // roll back to the last consistent state
        Phase = RunPhase.WaitingForWorkers;
        commands.AddRange(TryForm());
        return commands;
    }

    public IReadOnlyList<RunCommand> OnPrepared(GroupPrepared m)
    {
        if (m.Generation != Generation || Phase != RunPhase.Preparing) return [];
        if (m.NextStep != NextStep)
            return Fail($"rank {m.Rank} resumed at step {m.NextStep}, expected {NextStep}");
        _prepared.Add(m.Rank);
        if (_prepared.Count < _members.Count) return [];
        Phase = RunPhase.Running;
        return IssueWindow();
    }

    public IReadOnlyList<RunCommand> OnStepCompleted(StepCompleted m)
    {
        if (m.Generation != Generation || Phase != RunPhase.Running) return [];
        var decided = Decide(m);
        return decided.Count == 0 ? [new StepReported(m)] : [new StepReported(m), .. decided];
    }

    private IReadOnlyList<RunCommand> Decide(StepCompleted m)
    {
        if (!_stepReports.TryGetValue(m.Step, out var byRank)) _stepReports[m.Step] = byRank = new();
        byRank[m.Rank] = m.ParameterChecksum;
        if (byRank.Count < _members.Count) return [];

        _stepReports.Remove(m.Step);
        var checksums = byRank.Where(kv => kv.Value is not null).ToList();
        if (checksums.Count == _members.Count)
        {
            // A strict majority is the consensus and every other rank is named; without one, all ranks are listed.
            var groups = checksums.GroupBy(kv => kv.Value).OrderByDescending(g => g.Count()).ToList();
            if (groups.Count > 1)
            {
                if (groups[0].Count() * 2 > checksums.Count)
                {
                    var diverged = groups.Skip(1).SelectMany(g => g).Select(kv => kv.Key).OrderBy(r => r);
                    return Fail($"parameter checksum mismatch after step {m.Step}: rank(s) {string.Join(", ", diverged)} diverged from the majority");
                }
                var all = checksums.OrderBy(kv => kv.Key).Select(kv => $"rank {kv.Key}={kv.Value}");
                return Fail($"parameter checksum mismatch after step {m.Step}, no majority: {string.Join(", ", all)}");
            }
        }
        NextStep = m.Step + 1;
        if (NextStep < _windowEnd) return [];

        bool last = NextStep >= _limits.TotalSteps;
        bool checkpointDue = _limits.CheckpointEvery > 0 && NextStep - LastCheckpointStep >= _limits.CheckpointEvery;
        if (last || checkpointDue || _joinPending || _stopReason is not null)
        {
            Phase = RunPhase.Checkpointing;
            return [new SendTo(_members[0].WorkerId, new SaveCheckpoint(_jobId, _stage, Generation, NextStep))];
        }
        return IssueWindow();
    }

    public IReadOnlyList<RunCommand> OnCheckpointSaved(CheckpointSaved m)
    {
        if (m.Generation != Generation || Phase != RunPhase.Checkpointing) return [];
        LastCheckpoint = m.Path;
        LastCheckpointStep = m.Step;
        return [new CheckpointReported(m), .. AfterCheckpoint()];
    }

    private IReadOnlyList<RunCommand> AfterCheckpoint()
    {
        if (_stopReason is not null && NextStep < _limits.TotalSteps) return Stop();
        if (NextStep >= _limits.TotalSteps)
        {
            Phase = RunPhase.Completed;
            var done = _members.Select(w => (RunCommand)new SendTo(w.WorkerId, new AbortGroup(_jobId, _stage, Generation, "stage completed"))).ToList();
            done.AddRange(End(new Finished(true, $"{_limits.TotalSteps} steps on {_members.Count} worker(s), {RestartsUsed} restart(s)")));
            return done;
        }
        if (_joinPending && _free.Count > 0)
        {
            // Re-form with the newcomers from the checkpoint just written: same step, larger world.
            _joinPending = false;
            var commands = _members.Select(w => (RunCommand)new SendTo(w.WorkerId, new AbortGroup(_jobId, _stage, Generation, "re-forming to admit new workers"))).ToList();
            foreach (var w in _members) _free[w.WorkerId] = w;
            _members = new List<WorkerSlot>();
            Phase = RunPhase.WaitingForWorkers;
            commands.AddRange(TryForm());
            return commands;
        }
        _joinPending = false;
        Phase = RunPhase.Running;
        return IssueWindow();
    }

    public IReadOnlyList<RunCommand> OnSessionFailed(SessionFailed m)
    {
        if (m.Generation != Generation || !Live) return [];
        // A rank that lost a peer names it; blame the suspect if known, else the reporter.
        var blamed = m.SuspectRank is int s && s >= 0 && s < _members.Count ? _members[s] : _members.ElementAtOrDefault(m.Rank);
        return blamed is null ? [] : OnWorkerLost(blamed.WorkerId, $"rank {m.Rank} at step {m.Step}: {m.Reason}");
    }

    /// <summary>Gives the run up (no workers came): members are told to leave.</summary>
    public IReadOnlyList<RunCommand> Abandon(string reason) => Live ? Fail(reason) : [];

    /// <summary>
    /// Stops the run at the next step boundary (a cancelled job): a running group finishes its window and saves a
    /// checkpoint first, so the work done is kept; a group not yet running stops now.
    /// </summary>
    public IReadOnlyList<RunCommand> RequestStop(string reason)
    {
        if (!Live || _stopReason is not null) return [];
        _stopReason = reason;
        return Phase is RunPhase.WaitingForWorkers or RunPhase.Preparing ? Stop() : [];
    }

    private IReadOnlyList<RunCommand> Stop()
    {
        Phase = RunPhase.Stopped;
        var commands = _members.Select(w => (RunCommand)new SendTo(w.WorkerId, new AbortGroup(_jobId, _stage, Generation, _stopReason!))).ToList();
        string kept = LastCheckpoint is null ? "no checkpoint yet" : $"checkpoint of step {LastCheckpointStep} kept";
        commands.AddRange(End(new Finished(false, $"stopped at step {NextStep}: {_stopReason} ({kept})", Stopped: true)));
        return commands;
    }

    /// <summary>Members the run is waiting on right now: the suspects when progress stalls past a deadline.</summary>
    public IReadOnlyList<WorkerSlot> Awaited()
    {
        return Phase switch
        {
            RunPhase.Preparing => _members.Where((_, rank) => !_prepared.Contains(rank)).ToList(),
            RunPhase.Running => _members.Where((_, rank) => !(_stepReports.TryGetValue(NextStep, out var r) && r.ContainsKey(rank))).ToList(),
            RunPhase.Checkpointing => _members.Take(1).ToList(),
            _ => [],
        };
    }

    private IReadOnlyList<RunCommand> TryForm()
    {
        if (_free.Count < _limits.MinWorkers) return [];
        // Deterministic rank order: by worker id, so a re-formed group is reproducible.
        _members = _free.Values.OrderBy(w => w.WorkerId, StringComparer.Ordinal).Take(_limits.MaxWorkers).ToList();
        foreach (var w in _members) _free.Remove(w.WorkerId);
        var commands = new List<RunCommand>();
        if (ViaReducer && Formed) commands.Add(new EndReducer(Generation));
        Generation++;
        GroupSecret = RandomNumberGenerator.GetBytes(32);
        _prepared.Clear();
        _stepReports.Clear();
        Phase = RunPhase.Preparing;
        commands.Add(new GroupFormed(Generation, _members.Select(m => m.WorkerId).ToList(), RestartsUsed, Lockstep: true));
        if (ViaReducer) commands.Add(new StartReducer(Generation, _members.Count, _transport.Wire, GroupSecret));
        var peers = _members.Select(w => w.DataPlane).ToList();
        commands.AddRange(_members.Select((w, rank) => (RunCommand)new SendTo(w.WorkerId,
            new PrepareGroup(_jobId, _stage, Generation, rank, _members.Count, peers, _specYaml, _quick, LastCheckpoint,
                _transport.Aggregation, _transport.Wire, _transport.Reducer, GroupSecret))));
        return commands;
    }

    private IReadOnlyList<RunCommand> IssueWindow()
    {
        _windowEnd = Math.Min(_limits.TotalSteps, NextStep + _limits.Window);
        if (_limits.CheckpointEvery > 0) _windowEnd = Math.Min(_windowEnd, LastCheckpointStep + _limits.CheckpointEvery);
        // Windows end on multiples of ChecksumEvery, where every rank reports a parameter checksum.
        int k = _limits.ChecksumEvery;
        if (k > 0) _windowEnd = Math.Min(_windowEnd, (NextStep / k + 1) * k);
        bool checksum = k > 0 && (_windowEnd % k == 0 || _windowEnd == _limits.TotalSteps);
        var run = new RunSteps(_jobId, _stage, Generation, NextStep, _windowEnd, checksum);
        return _members.Select(w => (RunCommand)new SendTo(w.WorkerId, run)).ToList();
    }

    private IReadOnlyList<RunCommand> Fail(string reason)
    {
        Phase = RunPhase.Failed;
        FailureReason = reason;
        var commands = _members.Select(w => (RunCommand)new SendTo(w.WorkerId, new AbortGroup(_jobId, _stage, Generation, reason))).ToList<RunCommand>();
        commands.AddRange(End(new Finished(false, reason)));
        return commands;
    }

    /// <summary>The run's last commands: its reducer slot closed (coordinator aggregation), then its end.</summary>
    private IEnumerable<RunCommand> End(Finished finished)
    {
        if (ViaReducer && Formed) yield return new EndReducer(Generation);
        yield return finished;
    }
}
