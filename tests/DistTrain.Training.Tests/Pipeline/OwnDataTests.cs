using DistTrain.Execution;
using System.Text.Json;
using DistTrain.Contracts.Specs;
using DistTrain.Data;
using DistTrain.Data.Files;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Training.Pipeline;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// Every stage kind trains on the user's files: each spec of examples/own-data runs end to end (quick, in process),
/// the data a spec names is the data a stage reads (a corpus of a dozen invented words, checked by hand), and bad
/// data stops a run with an error that says what and where.
/// </summary>
public sealed class OwnDataTests(ITestOutputHelper output)
{
    public static TheoryData<string> Specs() => new(Directory.GetFiles(OwnData.Folder, "*.yaml").Select(Path.GetFileName).Order()!);

    [Fact]
    public void The_folder_holds_a_spec_per_stage_kind()
    {
        var kinds = Directory.GetFiles(OwnData.Folder, "*.yaml").SelectMany(f => TinySpecs.Load(File.ReadAllText(f)).Stages).Select(s => s.Kind).ToHashSet();
        Assert.Equal(Enum.GetValues<StageKind>().ToHashSet(), kinds);
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Quick_run_trains_on_the_files_and_records_tokenizer_and_classes(string file)
    {
        using var dir = new TempDir();
        var root = OwnData.CopyTo(dir.Path);
        var result = JobSpecs.LoadFile(Path.Combine(root, file), root, quick: true);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        var job = result.Spec!;
        set_num_threads(1);
        var report = new PipelineRunner(Path.Combine(dir.Path, "runs"), "job", CPU, null, root).Run(job);

        foreach (var stage in job.Stages)
        {
            var metrics = report.Stages[stage.Name];
            Assert.NotEmpty(metrics);
            foreach (var (name, value) in metrics) Assert.True(double.IsFinite(value), $"{file}: {stage.Name}.{name} = {value}");
            output.WriteLine($"{file} {stage.Name}: {string.Join(", ", metrics.Take(5).Select(m => $"{m.Key}={m.Value:G4}"))}");
            var artifacts = new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", stage.Name, root);
            if (!stage.Kind.Trains()) continue;
            // The tokenizer is saved with the checkpoint and is the job's.
            Assert.Equal(StageInputs.Tokenizer(job, stage, root).Identity, Tokenizers.Load(artifacts.Tokenizer).Identity);
            if (stage.Objective is ClassificationSpec { Task: ClassificationTask.Sequence or ClassificationTask.Token })
            {
                var classes = JsonSerializer.Deserialize<string[]>(File.ReadAllText(artifacts.Classes))!;
                Assert.True(classes.Length >= 2, $"{file}: {stage.Name} has {classes.Length} classes");
            }
        }
        // Prepared shards are a content-addressed cache under the data root: a second run reuses them.
        Assert.NotEmpty(Directory.GetDirectories(DataCatalog.CacheRoot(root)));
    }

    /// <summary>A corpus of a dozen invented words, each document " w1 w2 …": the data a spec names is the data that trains.</summary>
    private static readonly string[] Words = ["blorp", "snazzle", "quibbet", "frondle", "maxwop", "tiddlewink", "grumbo", "zenith", "plinkor", "wuzzle", "ravvish", "oomplet"];

    [Fact]
    public void Data_path_is_read_the_unigram_baseline_is_the_hand_count_and_a_gpt_samples_only_its_words()
    {
        using var dir = new TempDir();
        var rng = new Random(4242);
        var docs = Enumerable.Range(0, 400).Select(_ => " " + string.Join(' ', Enumerable.Range(0, rng.Next(5, 15)).Select(_ => Words[(int)Math.Min(11, Math.Floor(12 * Math.Pow(rng.NextDouble(), 1.5)))]))).ToList();
        Directory.CreateDirectory(Path.Combine(dir.Path, "words"));
        File.WriteAllLines(Path.Combine(dir.Path, "words", "train.jsonl"), docs.Take(320).Select(d => JsonSerializer.Serialize(new { text = d })));
        File.WriteAllLines(Path.Combine(dir.Path, "words", "validation.jsonl"), docs.Skip(320).Select(d => JsonSerializer.Serialize(new { text = d })));
        const int seqLen = 32;
        var job = TinySpecs.Load($$"""
            name: words
            seed: 3
            tokenizer: {kind: subvocab, size: 400}
            stages:
              - name: lm
                kind: pretrain
                objective: clm
                model: {family: gpt, layers: 2, hidden: 48, heads: 4, ffn: 128, max_len: {{seqLen}}, dropout: 0.0}
                data: {path: words, seq_len: {{seqLen}}}
                train: {steps: 150, batch_size: 16, lr: 5.0e-3, warmup: 10}
            """);
        set_num_threads(1);
        var runs = Path.Combine(dir.Path, "runs");
        var metrics = new PipelineRunner(runs, "job", CPU, null, dir.Path).Run(job).Stages["lm"];

        // The hand count: each split is the stream "doc tokens, sep" per document, cut into windows of seqLen − 2 tokens,
        // each window's targets its tokens plus the closing eos. Add-one unigram over the model's vocabulary.
        var tokenizer = Tokenizers.Load(new StageArtifacts(runs, "job", "lm").Tokenizer);
        (Dictionary<int, long> Counts, long Total) Targets(IEnumerable<string> split)
        {
            var stream = split.SelectMany(d => tokenizer.Encode(d).Append(SpecialTokens.Sep)).ToList();
            int windows = (stream.Count + seqLen - 3) / (seqLen - 2);
            var counts = stream.GroupBy(t => t).ToDictionary(g => g.Key, g => (long)g.Count());
            counts[SpecialTokens.Eos] = counts.GetValueOrDefault(SpecialTokens.Eos) + windows;
            return (counts, stream.Count + windows);
        }
        var (train, trainTotal) = Targets(docs.Take(320));
        var (valid, validTotal) = Targets(docs.Skip(320));
        double nll = valid.Sum(kv => -kv.Value * Math.Log((train.GetValueOrDefault(kv.Key) + 1.0) / (trainTotal + tokenizer.Size)));
        double expected = Math.Exp(nll / validTotal);
        output.WriteLine($"unigram perplexity {metrics["unigram_perplexity"]:G6} (hand count {expected:G6}); model perplexity {metrics["perplexity"]:G4}; vocabulary {tokenizer.Size}");
        Assert.Equal(expected, metrics["unigram_perplexity"], 1e-9 * expected);
        // The sub-vocabulary was built from these words, not from Brown: its merged tokens are exactly the multi-byte
        // GPT-2 tokens of the twelve words (there are fewer than the 400 asked for).
        var gpt2 = Gpt2Tokenizer.Shared;
        int merged = Words.SelectMany(w => gpt2.Encode(" " + w)).Distinct().Count(id => gpt2.TokenBytes(id).Length >= 2);
        Assert.Equal(SubVocabulary.FirstMergedId + merged, tokenizer.Size);

        // A GPT trained on it writes only those words.
        using var model = (GptLanguageModel)ObjectiveFactory.LoadTrained(job, job.Stages[0], new StageArtifacts(runs, "job", "lm", dir.Path), CPU);
        model.eval();
        // Windows cut documents anywhere, so a sequence may open mid-word; a document opens after the separator.
        using var prompt = tensor(Enumerable.Range(0, 8).SelectMany(_ => new long[] { SpecialTokens.Bos, SpecialTokens.Sep }).ToArray(), [8, 2]);
        using var gen = new TorchSharp.torch.Generator(17);
        using var ids = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 24, TopK = 5, Temperature = 0.8 }, gen);
        var rows = ids.to(ScalarType.Int64).data<long>().ToArray();
        int width = (int)ids.shape[1];
        int written = 0;
        for (int r = 0; r < 8; r++)
        {
            var all = rows[(r * width + 2)..((r + 1) * width)].Select(x => (int)x).ToArray();
            var row = all.TakeWhile(x => x is not (SpecialTokens.Eos or SpecialTokens.Pad or SpecialTokens.Sep)).ToArray();
            var text = tokenizer.Decode(row, skipSpecials: true);
            output.WriteLine(text);
            var written_ = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // A row that ran out of new tokens before ending its document may end mid-word.
            if (row.Length == all.Length) written_ = written_[..^1];
            written += written_.Length;
            Assert.All(written_, w => Assert.Contains(w, Words));
        }
        Assert.True(written >= 16, $"the model wrote only {written} words");
    }

    [Fact]
    public void A_missing_path_is_an_error_at_validation_and_at_run_naming_the_path()
    {
        using var dir = new TempDir();
        const string spec = """
            name: missing
            stages:
              - {name: lm, kind: pretrain, objective: clm, model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512}, data: {path: does-not-exist.jsonl, seq_len: 32}, train: {steps: 2, batch_size: 4}}
            """;
        var validated = JobSpecs.Load(spec, dir.Path);
        Assert.Contains(validated.Errors, e => e.Path == "stages[0].data.path" && e.Message.Contains("'does-not-exist.jsonl' does not exist under the data root"));
        // Without a data root (lexical checks only) the spec passes; the run then names the missing path.
        var job = TinySpecs.Load(spec);
        var e = Assert.Throws<DataFormatException>(() => new PipelineRunner(Path.Combine(dir.Path, "runs"), "job", CPU, null, dir.Path).Run(job));
        Assert.Contains("does-not-exist.jsonl", e.Message);
        var noRoot = Assert.Throws<InvalidOperationException>(() => new PipelineRunner(Path.Combine(dir.Path, "runs"), "job", CPU).Run(job));
        Assert.Contains("no data root", noRoot.Message);
    }

    [Fact]
    public void A_malformed_line_stops_the_run_before_training_with_file_and_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "pairs.jsonl"), "{\"prompt\": \"a\", \"response\": \" b\"}\n{\"prompt\": \"c\", \"response\": \n");
        var job = TinySpecs.Load("""
            name: bad
            stages:
              - {name: sft, kind: sft, model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512}, data: {path: pairs.jsonl, seq_len: 32}, train: {steps: 2, batch_size: 4}}
            """);
        var e = Assert.Throws<DataFormatException>(() => new PipelineRunner(Path.Combine(dir.Path, "runs"), "job", CPU, null, dir.Path).Run(job));
        output.WriteLine(e.Message);
        Assert.Contains("pairs.jsonl:2", e.Message);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "runs", "job", "sft", "checkpoints")), "training started on bad data");
    }

    [Fact]
    public void A_schema_mismatch_lists_the_fields_expected_and_found()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "reviews.jsonl"), "{\"body\": \"good film\", \"stars\": 5}\n");
        var job = TinySpecs.Load("""
            name: mismatch
            stages:
              - {name: clf, kind: finetune, objective: {kind: classification, task: sequence}, model: {family: bert, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512}, data: {path: reviews.jsonl, seq_len: 32}, train: {steps: 2, batch_size: 4}}
            """);
        var e = Assert.Throws<DataFormatException>(() => new PipelineRunner(Path.Combine(dir.Path, "runs"), "job", CPU, null, dir.Path).Run(job));
        output.WriteLine(e.Message);
        Assert.Contains("reviews.jsonl:1", e.Message);
        Assert.Contains("text", e.Message);
        Assert.Contains("body", e.Message);
        Assert.Contains("stars", e.Message);
    }

    [Fact]
    public void A_checkpoint_loads_only_under_its_own_tokenizer()
    {
        using var dir = new TempDir();
        var root = OwnData.CopyTo(dir.Path);
        var job = JobSpecs.LoadFile(Path.Combine(root, "pretrain-gpt.yaml"), root, quick: true).Spec!;
        var runs = Path.Combine(dir.Path, "runs");
        new PipelineRunner(runs, "job", CPU, null, root).Run(job);
        // The same stage read back under another tokenizer (the full GPT-2) is refused, naming both.
        var other = job with { Tokenizer = new TokenizerSpec(TokenizerKind.Gpt2), Stages = job.Stages.Select(s => s with { Model = s.Model with { VocabSize = TokenizerSpec.Gpt2Size } }).ToList() };
        var e = Assert.Throws<InvalidOperationException>(() => ObjectiveFactory.LoadTrained(other, other.Stages[0], new StageArtifacts(runs, "job", "clm", root), CPU));
        Assert.Contains("subvocab:", e.Message);
        Assert.Contains("gpt2", e.Message);
    }

    [Fact]
    public void The_full_gpt2_tokenizer_trains_a_stage_and_is_saved_with_it()
    {
        using var dir = new TempDir();
        var root = OwnData.CopyTo(dir.Path);
        var job = TinySpecs.Load("""
            name: gpt2-tokens
            seed: 1
            tokenizer: gpt2
            stages:
              - {name: lm, kind: pretrain, objective: clm, model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32}, data: {path: books, seq_len: 32, max_examples: 32}, train: {steps: 3, batch_size: 4}}
            """);
        Assert.Equal(TokenizerSpec.Gpt2Size, job.Stages[0].Model.VocabSize);
        var runs = Path.Combine(dir.Path, "runs");
        var metrics = new PipelineRunner(runs, "job", CPU, null, Path.Combine(root, "data")).Run(job).Stages["lm"];
        Assert.True(double.IsFinite(metrics["loss"]));
        var saved = Tokenizers.Load(new StageArtifacts(runs, "job", "lm").Tokenizer);
        Assert.Equal(("gpt2", TokenizerSpec.Gpt2Size), (saved.Identity, saved.Size));
    }

}
