using DistTrain.Contracts.Protocols;

namespace DistTrain.Cluster.Coordination;

/// <summary>
/// The coordinator's state for one distributed inference stage (label): a fixed set of shards handed out one at a
/// time to free workers, as pure logic like <see cref="DataParallelRun"/>.
///
/// Transitions:
///   Waiting --a worker is free--> Running                 (each free worker gets the next pending shard)
///   Running --shard done--> Running                        (that worker gets the next pending shard)
///   Running --last shard done--> Completed
///   Running --worker lost--> Running | Waiting            (its shard goes back to the pending set)
///   Running --shard failed, retries left--> Running       (the shard goes back; another worker may take it)
///   Running --shard failed, retries spent--> Failed
///   Waiting | Running --stop requested--> Stopped          (finished shards stay on storage for a later attempt)
/// </summary>
public sealed class InferenceRun : IStageRun
{
    private readonly string _jobId, _stage, _specYaml;
    private readonly bool _quick;
    private readonly int _maxWorkers, _maxShardFailures;
    private readonly SortedSet<int> _pending;
    private readonly HashSet<int> _done = new();
    private readonly Dictionary<string, (WorkerSlot Worker, int Shard)> _assigned = new();
    private readonly Dictionary<int, int> _failures = new();
    private readonly List<WorkerSlot> _free = new();

    public InferenceRun(string jobId, string stage, string specYaml, bool quick, int shardCount, int maxWorkers, int maxShardFailures = 2)
    {
        if (shardCount < 1) throw new ArgumentException($"shard count {shardCount} must be at least 1");
        if (maxWorkers < 1) throw new ArgumentException($"max workers {maxWorkers} must be at least 1");
        (_jobId, _stage, _specYaml, _quick, _maxWorkers, _maxShardFailures) = (jobId, stage, specYaml, quick, maxWorkers, maxShardFailures);
        ShardCount = shardCount;
        _pending = new SortedSet<int>(Enumerable.Range(0, shardCount));
    }

    public int ShardCount { get; }
    public int Done => _done.Count;
    public RunPhase Phase { get; private set; } = RunPhase.WaitingForWorkers;
    /// <summary>Workers holding a shard right now.</summary>
    public IReadOnlyList<WorkerSlot> Members => _assigned.Values.Select(a => a.Worker).ToList();
    /// <summary>Inference keeps no checkpoint: finished shards stay on storage.</summary>
    public string? LastCheckpoint => null;
    /// <summary>A lost worker's shard goes back to the pool; that is not a restart.</summary>
    public int RestartsUsed => 0;
    private bool Live => Phase is RunPhase.WaitingForWorkers or RunPhase.Running;

    public IReadOnlyList<RunCommand> OnWorkersAvailable(IReadOnlyCollection<WorkerSlot> workers)
    {
        if (!Live) return [];
        foreach (var w in workers)
            if (!_assigned.ContainsKey(w.WorkerId) && _free.All(f => f.WorkerId != w.WorkerId)) _free.Add(w);
        return Assign();
    }

    public IReadOnlyList<RunCommand> OnShardDone(ShardDone m, string workerId)
    {
        if (!Live || !_assigned.TryGetValue(workerId, out var a) || a.Shard != m.Shard) return [];
        _assigned.Remove(workerId);
        _done.Add(m.Shard);
        if (_done.Count == ShardCount)
        {
            Phase = RunPhase.Completed;
            return [new Finished(true, $"{ShardCount} shard(s) labelled")];
        }
        _free.Add(a.Worker);
        return Assign();
    }

    public IReadOnlyList<RunCommand> OnShardFailed(ShardFailed m, string workerId)
    {
        if (!Live || !_assigned.TryGetValue(workerId, out var a) || a.Shard != m.Shard) return [];
        _assigned.Remove(workerId);
        int failures = _failures[m.Shard] = _failures.GetValueOrDefault(m.Shard) + 1;
        if (failures > _maxShardFailures) return Fail($"shard {m.Shard} failed {failures} time(s), last on {workerId}: {m.Reason}");
        _pending.Add(m.Shard);
        _free.Add(a.Worker);
        return Assign();
    }

    public IReadOnlyList<RunCommand> OnWorkerLost(string workerId, string reason)
    {
        _free.RemoveAll(w => w.WorkerId == workerId);
        if (!Live || !_assigned.Remove(workerId, out var a)) return [];
        _pending.Add(a.Shard);
        if (_assigned.Count == 0) Phase = RunPhase.WaitingForWorkers;
        return Assign();
    }

    /// <summary>Stops handing out shards; what is done stays on storage and is reused by a later attempt.</summary>
    public IReadOnlyList<RunCommand> RequestStop(string reason)
    {
        if (!Live) return [];
        Phase = RunPhase.Stopped;
        _assigned.Clear();
        return [new Finished(false, $"stopped with {_done.Count} of {ShardCount} shard(s) done: {reason}", Stopped: true)];
    }

    /// <summary>Gives the run up (no workers came).</summary>
    public IReadOnlyList<RunCommand> Abandon(string reason) => Live ? Fail(reason) : [];

    /// <summary>None: one shard is one long unit of work without a step deadline; a lost worker returns it to the pool.</summary>
    public IReadOnlyList<WorkerSlot> Awaited() => [];

    private IReadOnlyList<RunCommand> Assign()
    {
        var commands = new List<RunCommand>();
        foreach (var w in _free.OrderBy(w => w.WorkerId, StringComparer.Ordinal).ToList())
        {
            if (_pending.Count == 0 || _assigned.Count >= _maxWorkers) break;
            int shard = _pending.Min;
            _pending.Remove(shard);
            _free.Remove(w);
            _assigned[w.WorkerId] = (w, shard);
            commands.Add(new SendTo(w.WorkerId, new RunShard(_jobId, _stage, _specYaml, _quick, shard, ShardCount)));
        }
        // Workers left over go back to the coordinator's pool: this run holds only workers it is using.
        _free.Clear();
        if (_assigned.Count > 0 && Phase == RunPhase.WaitingForWorkers)
        {
            Phase = RunPhase.Running;
            commands.Insert(0, new GroupFormed(0, _assigned.Keys.Order(StringComparer.Ordinal).ToList(), 0, Lockstep: false));
        }
        return commands;
    }

    private IReadOnlyList<RunCommand> Fail(string reason)
    {
        Phase = RunPhase.Failed;
        _assigned.Clear();
        return [new Finished(false, reason)];
    }
}
