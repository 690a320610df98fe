using DistTrain.Host;
using DistTrain.Execution;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Specs;
using DistTrain.Data;
using DistTrain.Data.Corpora;
using DistTrain.Data.Shards;
using DistTrain.Training.Pipeline;

namespace DistTrain.Bench;

/// <summary>Preparing one corpus: its size, the time, and the rates (MB/s of source text, tokens/s).</summary>
public sealed record PrepareTiming(string Corpus, long Bytes, double Seconds, long Tokens, long ShardBytes)
{
    public double MegabytesPerSecond => Bytes / 1e6 / Seconds;
    public double TokensPerSecond => Tokens / Seconds;
}

/// <summary>Training on one corpus on a local cluster: wall time and each worker's resident memory.</summary>
/// <param name="PeakRssBytes">VmHWM: the peak resident set, anonymous and file-backed (mapped shard pages count here).</param>
/// <param name="PeakAnonBytes">The largest sampled RssAnon: memory the process owns (heap, native tensors), not file pages the kernel can drop.</param>
public sealed record TrainingMemory(string Corpus, int Steps, double Seconds, IReadOnlyList<long> PeakRssBytes, IReadOnlyList<long> PeakAnonBytes, IReadOnlyList<long> PeakFileBytes);

/// <summary>
/// `disttrain bench data`: a user's corpus of ~10 MB and one of ≥ 1 GB, generated from Brown sentences, prepared into
/// shards (tokenize once) and trained on for the same steps on a 2-worker cluster, while every worker's RSS is sampled.
/// The claim it checks: worker memory does not grow with the corpus (docs/benchmarks.md#own-data).
/// </summary>
public static class OwnDataBench
{
    /// <summary>The training spec: a 2-layer GPT, 64 tokens, global batch 16, a 8,192-id sub-vocabulary of the corpus.</summary>
    public static string Spec(string path, int steps, int workers) => $$"""
        name: bench-data
        seed: 1
        tokenizer: {kind: subvocab, size: 8192}
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: 2, hidden: 128, heads: 4, ffn: 512, max_len: 64, dropout: 0.0}
            data: {path: {{path}}, seq_len: 64, validation_fraction: 0.001, test_fraction: 0.001}
            train: {steps: {{steps}}, batch_size: 16, lr: 1.0e-3, warmup: 0, eval_every: 0, checkpoint_every: 0}
            distributed: {workers: {{workers}}, aggregation: ring}
        """;

    /// <summary>
    /// Writes about <paramref name="bytes"/> of JSONL documents into <paramref name="files"/> files under <paramref name="dir"/>:
    /// each document 5–40 Brown sentences drawn at random (seeded), so text is real and no file repeats another.
    /// Streams to disk; nothing of the corpus is held in memory.
    /// </summary>
    public static long WriteCorpus(string dir, long bytes, int files, int seed)
    {
        Directory.CreateDirectory(dir);
        var sentences = BrownCorpus.LoadDefault().Documents.SelectMany(d => d.Sentences).Select(s => s.Text).ToArray();
        var rng = new Random(seed);
        long written = 0;
        var options = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        for (int f = 0; f < files; f++)
        {
            using var writer = new StreamWriter(Path.Combine(dir, $"part-{f:D3}.jsonl"), false, new UTF8Encoding(false), 1 << 20);
            long target = bytes * (f + 1) / files;
            var doc = new StringBuilder();
            while (written < target)
            {
                doc.Clear();
                int n = rng.Next(5, 41);
                for (int i = 0; i < n; i++) doc.Append(i == 0 ? "" : " ").Append(sentences[rng.Next(sentences.Length)]);
                string line = "{\"text\":" + JsonSerializer.Serialize(doc.ToString(), options) + "}";
                writer.WriteLine(line);
                written += Encoding.UTF8.GetByteCount(line) + 1;
            }
        }
        return written;
    }

    /// <summary>Prepares the corpus of a spec (its sub-vocabulary, then its shards) as `disttrain data prepare` does, printing progress to stderr.</summary>
    public static PrepareTiming Prepare(string name, string dataRoot, string specYaml)
    {
        var job = JobSpecs.Load(specYaml, dataRoot).Spec ?? throw new InvalidOperationException(string.Join("; ", JobSpecs.Load(specYaml, dataRoot).Errors));
        var stage = job.Stages[0];
        var last = Stopwatch.StartNew();
        var progress = new Progress<PrepareProgress>(p =>
        {
            if (last.Elapsed.TotalSeconds < 5 && p.BytesRead < p.TotalBytes) return;
            last.Restart();
            double s = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
            Console.Error.WriteLine($"  {name}: {p.BytesRead / 1e6:N0}/{p.TotalBytes / 1e6:N0} MB  {p.BytesRead / 1e6 / s:F1} MB/s  {p.Tokens / s / 1e3:F0} k tokens/s");
        });
        var clock = Stopwatch.StartNew();
        var data = (FileStageData)StageInputs.Data(job, stage, new StageArtifacts(Path.GetTempPath(), "bench", "data", dataRoot), progress: progress);
        double seconds = clock.Elapsed.TotalSeconds;
        var p = data.Prepared;
        long sourceBytes = p.Manifest.Sources.Sum(x => x.Bytes);
        long shardBytes = Directory.GetFiles(p.Directory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        return new PrepareTiming(name, sourceBytes, seconds, p.Train.TokenCount + p.Validation.TokenCount + p.Test.TokenCount, shardBytes);
    }

    /// <summary>Runs the spec on a fresh local cluster sharing <paramref name="dataRoot"/>, sampling each worker's RSS every 0.5 s.</summary>
    public static async Task<TrainingMemory> TrainAsync(string name, string dataRoot, string specYaml, int workers, int steps, string runRoot, ExecutableCommand exe)
    {
        await using var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(workers, runRoot, exe, TorchThreads: 1) { DataRoot = dataRoot });
        var pids = Enumerable.Range(0, cluster.Workers.Count).Select(i => cluster.Workers[i].Id).ToArray();
        var peak = new long[pids.Length];
        var anon = new long[pids.Length];
        var file = new long[pids.Length];
        void Sample()
        {
            for (int i = 0; i < pids.Length; i++)
                if (Status(pids[i]) is { } s) { peak[i] = Math.Max(peak[i], s.Hwm); anon[i] = Math.Max(anon[i], s.Anon); file[i] = Math.Max(file[i], s.File); }
        }
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                Sample();
                try { await Task.Delay(500, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        var clock = Stopwatch.StartNew();
        var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(specYaml, quick: false);
        double seconds = clock.Elapsed.TotalSeconds;
        Sample();
        stop.Cancel();
        await sampler;
        if (result.State != JobState.Succeeded) throw new InvalidOperationException($"{name}: {string.Join("; ", result.Stages.Select(s => s.Summary))}");
        return new TrainingMemory(name, steps, seconds, peak, anon, file);
    }

    /// <summary>VmHWM (peak RSS), RssAnon and RssFile of a process, in bytes, from /proc; null once it has exited.</summary>
    public static (long Hwm, long Anon, long File)? Status(int pid)
    {
        try
        {
            long hwm = 0, anon = 0, file = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kb(line);
                else if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = Kb(line);
                else if (line.StartsWith("RssFile:", StringComparison.Ordinal)) file = Kb(line);
            }
            return (hwm, anon, file);
        }
        catch (IOException) { return null; }
        static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <summary>The whole benchmark: both corpora written, prepared and trained on; the figures for docs/benchmarks.md.</summary>
    public static async Task<object> RunAsync(double gigabytes, int smallMegabytes, int steps, int workers, string dir, ExecutableCommand exe)
    {
        var corpora = new[] { ("small", (long)(smallMegabytes * 1e6), 1), ("large", (long)(gigabytes * 1e9), 8) };
        var prepared = new List<PrepareTiming>();
        var trained = new List<TrainingMemory>();
        foreach (var (name, bytes, files) in corpora)
        {
            var clock = Stopwatch.StartNew();
            // A corpus left by an earlier --keep run of the same size is reused (its shards too, through the cache).
            long written = Directory.Exists(Path.Combine(dir, name)) && Directory.GetFiles(Path.Combine(dir, name)).Sum(f => new FileInfo(f).Length) >= bytes
                ? Directory.GetFiles(Path.Combine(dir, name)).Sum(f => new FileInfo(f).Length)
                : WriteCorpus(Path.Combine(dir, name), bytes, files, seed: 7);
            Console.Error.WriteLine($"{name}: wrote {written / 1e6:N0} MB in {clock.Elapsed.TotalSeconds:F0} s");
            var spec = Spec(name, steps, workers);
            prepared.Add(Prepare(name, dir, spec));
            Console.Error.WriteLine($"{name}: prepared {prepared[^1].Bytes / 1e6:N0} MB in {prepared[^1].Seconds:F0} s ({prepared[^1].MegabytesPerSecond:F1} MB/s)");
            trained.Add(await TrainAsync(name, dir, spec, workers, steps, Path.Combine(dir, "runs-" + name), exe));
            Console.Error.WriteLine($"{name}: trained {steps} steps in {trained[^1].Seconds:F0} s; peak RSS {string.Join(", ", trained[^1].PeakRssBytes.Select(b => $"{b / 1e6:N0} MB"))}; peak anonymous {string.Join(", ", trained[^1].PeakAnonBytes.Select(b => $"{b / 1e6:N0} MB"))}; peak file-backed {string.Join(", ", trained[^1].PeakFileBytes.Select(b => $"{b / 1e6:N0} MB"))}");
        }
        var difference = trained[1].PeakRssBytes.Zip(trained[0].PeakRssBytes, (l, s) => l - s).ToArray();
        var anonDifference = trained[1].PeakAnonBytes.Zip(trained[0].PeakAnonBytes, (l, s) => l - s).ToArray();
        return new
        {
            prepared, trained,
            peak_rss_difference_bytes = difference, peak_anon_difference_bytes = anonDifference,
            within_300_mb = difference.All(d => d <= 300_000_000),
        };
    }
}
