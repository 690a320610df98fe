using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using DistTrain.Contracts.Specs;
using DistTrain.Models;
using DistTrain.Training.Checkpointing;
using DistTrain.Training.Engine;
using DistTrain.Training.Objectives;
using DistTrain.Training.Optimization;
using DistTrain.Training.Sampling;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// One rank's part of a training stage: objective, trainer, exactly-once sampler and checkpoints. The in-process
/// runner drives it with world size 1; the cluster drives the same class on every worker with a data-plane reducer.
/// </summary>
public sealed class StageSession : ITrainingSession
{
    private readonly JobSpec _job;
    private readonly StageSpec _stage;
    private readonly StageArtifacts _artifacts;
    private readonly IGradientReducer _reducer;
    private readonly Objective _objective;
    private readonly Trainer _trainer;
    private readonly EpochSampler _sampler;
    private readonly long _seed;
    private readonly StreamWriter _samples;
    private StreamWriter? _history;   // rank 0 only
    private IReadOnlyDictionary<string, double>? _lastEvaluation;
    private IReadOnlyDictionary<string, double>? _baselines;

    public StageSession(JobSpec job, StageSpec stage, StageArtifacts artifacts, Device device, IGradientReducer reducer, string? resumeFrom, int generation = 0)
    {
        if (!stage.Kind.Trains()) throw new ArgumentException($"stage '{stage.Name}' ({stage.Kind}) does not train");
        (_job, _stage, _artifacts, _reducer) = (job, stage, artifacts, reducer);
        _seed = job.StageSeed(stage);
        _objective = ObjectiveFactory.Create(job, stage, artifacts, device);
        var t = stage.Train;
        var schedule = new LearningRateSchedule(t.Lr, t.Warmup, t.Steps, t.Schedule.ToString().ToLowerInvariant());
        _trainer = new Trainer(_objective.Model, new TrainerOptions(schedule, t.WeightDecay, t.Clip, Seed: _seed, BucketBytes: stage.Distributed.GradientBucketBytes), reducer);
        var state = resumeFrom is null ? null : CheckpointStore.Load(resumeFrom, _objective.Model, _trainer.Optimizer);
        _sampler = new EpochSampler(_objective.TrainCount, _seed, state?.Sampler);
        NextStep = state?.Step ?? 0;
        if (t.BatchSize < reducer.WorldSize * t.MicroBatches)
            throw new ArgumentException($"stage '{stage.Name}': batch_size {t.BatchSize} is smaller than workers ({reducer.WorldSize}) × micro_batches ({t.MicroBatches})");

        // Every rank records which examples it trained at each step, tagged with the group generation: after a
        // rollback, the last record of each step is the one that counts (tests check exactly-once from these).
        Directory.CreateDirectory(artifacts.Directory);
        _samples = new StreamWriter(new FileStream(Path.Combine(artifacts.Directory, $"samples-rank{reducer.Rank}.jsonl"), FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        _generation = generation;
    }

    private readonly int _generation;
    private readonly FaultInjection _faults = FaultInjection.FromEnvironment();

    public int NextStep { get; private set; }
    public int TotalSteps => _stage.Train.Steps;
    public long ParameterCount => _trainer.ParameterCount;
    public IReadOnlyDictionary<string, double>? LastEvaluation => _lastEvaluation;

    public StepReport RunStep(int step)
    {
        if (step != NextStep) throw new InvalidOperationException($"stage '{_stage.Name}': asked for step {step}, the session is at step {NextStep}");
        var dataClock = Stopwatch.StartNew();
        var batch = _sampler.Next(_stage.Train.BatchSize);
        var mine = batch.ShardFor(_reducer.Rank, _reducer.WorldSize);
        var micro = new List<IMicroBatch>();
        for (int m = 0; m < _stage.Train.MicroBatches; m++)
        {
            var (offset, length) = GlobalBatch.ShardRange(mine.Count, m, _stage.Train.MicroBatches);
            if (length > 0) micro.Add(_objective.TrainBatch(mine.Skip(offset).Take(length).ToArray(), batch.Epoch));
        }
        double dataSeconds = dataClock.Elapsed.TotalSeconds;
        _samples.WriteLine(JsonSerializer.Serialize(new { generation = _generation, step, epoch = batch.Epoch, examples = mine }));

        var report = _trainer.Step(step, micro, dataSeconds) with { Examples = batch.Count };
        _faults.AfterStep(_reducer.Rank, step, _objective.Model);
        NextStep = step + 1;
        int every = _stage.Train.EvalEvery;
        if (NextStep == TotalSteps || (every > 0 && NextStep % every == 0))
            report = report with { Evaluation = _lastEvaluation = Evaluate() };
        if (_reducer.Rank == 0)
        {
            _history ??= new StreamWriter(new FileStream(HistoryPath, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
            _history.WriteLine(JsonSerializer.Serialize(new HistoryEntry(step, report.Loss, report.LearningRate, report.GradNorm,
                report.Seconds, report.Examples, report.Targets, report.Evaluation)));
            if (NextStep == TotalSteps)
            {
                WriteMetrics();
                // Hugging Face interop: the final weights as safetensors (names are this model's state_dict keys).
                _objective.Model.save_safetensors(_artifacts.SafeTensors);
                if (_stage.Outputs.Export is ExportFormat.Hf)
                    HfExport.Write(_objective.Model, _job, _stage, _artifacts, Path.Combine(_artifacts.Directory, HfExport.Folder));
            }
        }
        return report;
    }

    /// <summary>Validation on every rank's shard, sums reduced exactly (fp32) across ranks, then turned into metrics.</summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        int n = _objective.ValidationCount;
        var (offset, length) = GlobalBatch.ShardRange(n, _reducer.Rank, _reducer.WorldSize);
        var sums = _objective.EvaluateShard(Enumerable.Range(offset, length).ToArray(), Math.Max(1, _stage.Train.BatchSize / _reducer.WorldSize));
        var keys = _objective.EvalKeys;
        var buffer = keys.Select(k => (float)sums[k]).ToArray();
        _reducer.AllReduceSum(buffer, buffer.Length, exactTail: buffer.Length);
        var metrics = new Dictionary<string, double>(_objective.Metrics(keys.Select((k, i) => (k, (double)buffer[i])).ToDictionary(x => x.k, x => x.Item2)));
        _baselines ??= _objective.Baselines();
        foreach (var (name, value) in _baselines) metrics[name] = value;
        return metrics;
    }

    public string ParameterChecksum()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var scope = NewDisposeScope();
        foreach (var p in Trainer.TrainableParameters(_objective.Model))
            sha.AppendData(p.detach().cpu().contiguous().bytes);
        return Convert.ToHexString(sha.GetHashAndReset())[..16];
    }

    public string SaveCheckpoint()
    {
        var state = new TrainingState(NextStep, _sampler.State, _seed, _reducer.WorldSize);
        return new CheckpointStore(_artifacts.Checkpoints).Save(_objective.Model, _trainer.Optimizer, state);
    }

    private string HistoryPath => Path.Combine(_artifacts.Directory, "history.jsonl");

    /// <summary>Rank 0's record of one step; after a rollback a step appears again and the later record wins.</summary>
    public sealed record HistoryEntry(int Step, double Loss, double Lr, double GradNorm, double Seconds, int Examples, long Targets, IReadOnlyDictionary<string, double>? Evaluation);

    private static IEnumerable<string> ReadLines(StreamReader reader)
    {
        while (reader.ReadLine() is { } line) yield return line;
    }

    private void WriteMetrics()
    {
        _history?.Flush();
        using var reader = new StreamReader(new FileStream(HistoryPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        var history = ReadLines(reader).Select(l => JsonSerializer.Deserialize<HistoryEntry>(l)!)
            .GroupBy(h => h.Step).Select(g => g.Last()).OrderBy(h => h.Step).ToList();
        var metrics = new Dictionary<string, double>(_lastEvaluation ?? new Dictionary<string, double>())
        {
            ["parameters"] = _trainer.ParameterCount,
        };
        // A linear probe trains only its head; say how much of the model stayed fixed.
        if (_stage.Train.FreezeBackbone) metrics["frozen_parameters"] = ModelFactory.ParameterCount(_trainer.Model) - _trainer.ParameterCount;
        var document = new { stage = _stage.Name, kind = _stage.Kind.ToString().ToLowerInvariant(), steps = TotalSteps, world_size = _reducer.WorldSize, metrics, history };
        File.WriteAllText(_artifacts.Metrics, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
    }

    public void Dispose()
    {
        _samples.Dispose();
        _history?.Dispose();
        _trainer.Dispose();
        _objective.Dispose();
    }
}
