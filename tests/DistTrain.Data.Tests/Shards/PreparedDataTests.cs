using System.Text.Json;
using DistTrain.Data.Files;
using DistTrain.Data.Shards;
using DistTrain.Data.Splits;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Shards;

public sealed class PreparedDataTests
{
    private static readonly string[] Labels = ["sports", "politics", "science", "art"];

    private static string Jsonl(DataSchema schema, int records, int seed = 1)
    {
        var rng = new SeededRandom((ulong)seed);
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Vocabulary[rng.Next(Vocabulary.Length)]));
        return string.Concat(Enumerable.Range(0, records).Select(i => JsonSerializer.Serialize<object>(schema switch
        {
            DataSchema.Text => new { text = Words(5 + i % 7) },
            DataSchema.Classification => new { text = Words(3 + i % 5), label = Labels[i % Labels.Length] },
            DataSchema.TokenTags => (object)new { tokens = Words(2 + i % 4).Split(' '), tags = Enumerable.Range(0, 2 + i % 4).Select(k => $"T{k % 3}").ToArray() },
            DataSchema.Sft => new { prompt = Words(4) + "?", response = " " + Words(3) },
            _ => new { prompt = i % 2 == 0 ? Words(2) : null, chosen = Words(3), rejected = Words(2) },
        }) + "\n"));
    }

    internal static readonly string[] Vocabulary =
        ["the", "of", "and", "committee", "naïve", "café", "東京", "run", "ran", "running", "quickly", "over", "lazy", "dog", "42", "2024", "🚀", "it's", "state-of-the-art", "Zürich"];

    [Theory]
    [InlineData(DataSchema.Text)]
    [InlineData(DataSchema.Classification)]
    [InlineData(DataSchema.TokenTags)]
    [InlineData(DataSchema.Sft)]
    [InlineData(DataSchema.Preference)]
    public void Prepared_rows_equal_direct_encoding(DataSchema schema)
    {
        using var tmp = new TempFolder();
        tmp.Write("data/all.jsonl", Jsonl(schema, 300));
        var files = DataFileResolver.Resolve(tmp.Path, "data");
        var tokenizer = Tokenizers.Gpt2();
        using var data = PreparedData.Prepare(files, schema, null, tokenizer, 5, 0.1, 0.1, tmp.File("cache/x"));
        var expected = DataSplitter.Records(files, schema, null, 5, 0.1, 0.1).ToList();
        Assert.Equal(300, data.Train.Count + data.Validation.Count + data.Test.Count);
        foreach (var split in Enum.GetValues<SplitName>())
        {
            var records = expected.Where(r => r.Split == split).Select(r => r.Record).ToList();
            var shard = data[split];
            Assert.Equal(records.Count, shard.Count);
            Assert.True(records.Count > 0);
            for (var i = 0; i < records.Count; i++)
            {
                var r = records[i];
                switch (schema)
                {
                    case DataSchema.Text:
                        Assert.Equal(tokenizer.Encode(r.Text("text")), shard.Row("text", i));
                        break;
                    case DataSchema.Classification:
                        Assert.Equal(tokenizer.Encode(r.Text("text")), shard.Row("text", i));
                        Assert.Equal(r.Label(), data.Labels[shard.Value("label", i)]);
                        break;
                    case DataSchema.TokenTags:
                        var words = r.Words("tokens");
                        var ids = words.SelectMany((w, k) => tokenizer.Encode(k == 0 ? w : " " + w)).ToArray();
                        Assert.Equal(ids, shard.Row("ids", i));
                        Assert.Equal(tokenizer.Encode(string.Join(' ', words)), ids); // words encoded apart = running text
                        Assert.Equal(r.Words("tags"), shard.Row("tags", i).Select(t => data.Labels[t]));
                        var starts = shard.Row("word_starts", i);
                        Assert.Equal(words.Length, starts.Length);
                        Assert.Equal(tokenizer.Encode(" " + words[^1]), ids[starts[^1]..]);
                        break;
                    case DataSchema.Sft:
                        Assert.Equal(tokenizer.Encode(r.Text("prompt")), shard.Row("prompt", i));
                        Assert.Equal(tokenizer.Encode(r.Text("response")), shard.Row("response", i));
                        break;
                    default:
                        Assert.Equal(tokenizer.Encode(r.Text("prompt")), shard.Row("prompt", i));
                        Assert.Equal(tokenizer.Encode(r.Text("chosen")), shard.Row("chosen", i));
                        Assert.Equal(tokenizer.Encode(r.Text("rejected")), shard.Row("rejected", i));
                        break;
                }
            }
        }
        var manifest = data.Manifest;
        Assert.Equal(DataSchemas.Name(schema), manifest.Schema);
        Assert.Equal(tokenizer.Identity, manifest.Tokenizer.Identity);
        Assert.Equal("data/all.jsonl", Assert.Single(manifest.Sources).Path);
        Assert.Equal(data.Train.TokenCount, manifest.Splits["train"].Tokens);
    }

    [Fact]
    public void Token_dtype_follows_the_tokenizer_size()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.txt", "abc\n\nde");
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        using var small = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(65536), 1, 0, 0, tmp.File("cache/x"));
        using var large = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(65537), 1, 0, 0, tmp.File("cache/x"));
        Assert.Equal("uint16", Assert.Single(small.Manifest.Columns).DType);
        Assert.Equal("uint32", Assert.Single(large.Manifest.Columns).DType);
        Assert.Equal(5 * 2, new FileInfo(Path.Combine(small.Directory, "train", "text.bin")).Length);
        Assert.Equal(5 * 4, new FileInfo(Path.Combine(large.Directory, "train", "text.bin")).Length);
        Assert.Equal(3 * 8, new FileInfo(Path.Combine(large.Directory, "train", "text.idx")).Length);
        Assert.Equal(new CharTokenizer().Encode("de"), large.Train.Row("text", 1));
        Assert.Equal("uint16", Tokenizers.Gpt2().Size <= 65536 ? "uint16" : "uint32"); // GPT-2's 50,295 ids fit uint16
    }

    [Fact]
    public void A_second_prepare_reuses_the_cache_and_a_changed_source_gets_a_new_key()
    {
        using var tmp = new TempFolder();
        var source = tmp.Write("d/a.jsonl", Jsonl(DataSchema.Classification, 50));
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        var cache = tmp.File("cache/x");
        string first;
        Dictionary<string, DateTime> times;
        using (var data = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(), 3, 0.2, 0, cache))
        {
            first = data.Directory;
            times = Directory.EnumerateFiles(first, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        }
        Thread.Sleep(20);
        using (var again = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(), 3, 0.2, 0, cache))
        {
            Assert.Equal(first, again.Directory);
            Assert.Equal(times, Directory.EnumerateFiles(first, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc));
        }
        // Anything in the key changes the folder: the seed, the tokenizer, the source's content.
        using (var other = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(), 4, 0.2, 0, cache)) Assert.NotEqual(first, other.Directory);
        using (var same = PreparedData.Prepare(files, DataSchema.Classification, new Dictionary<string, string> { ["text"] = "text" }, new CharTokenizer(), 3, 0.2, 0, cache))
            Assert.Equal(first, same.Directory); // a field mapped to its own name is no change
        using (var other = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(60000), 3, 0.2, 0, cache)) Assert.NotEqual(first, other.Directory);
        File.AppendAllText(source, Jsonl(DataSchema.Classification, 1, seed: 9));
        using var changed = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(), 3, 0.2, 0, cache);
        Assert.NotEqual(first, changed.Directory);
        Assert.Equal(51, changed.Train.Count + changed.Validation.Count + changed.Test.Count);
    }

    [Fact]
    public void A_field_map_reading_another_column_is_another_dataset()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", "{\"text\": \"short\", \"body\": \"the long body\"}\n");
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        using var text = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, tmp.File("cache"));
        using var body = PreparedData.Prepare(files, DataSchema.Text, new Dictionary<string, string> { ["text"] = "body" }, new CharTokenizer(), 1, 0, 0, tmp.File("cache"));
        Assert.NotEqual(text.Directory, body.Directory);
        Assert.Equal(new CharTokenizer().Encode("the long body"), body.Train.Row("text", 0));
        Assert.Equal("body", body.Manifest.FieldMap!["text"]);
    }

    [Fact]
    public void Two_concurrent_prepares_end_with_one_valid_folder()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", Jsonl(DataSchema.Text, 3000));
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        var cache = tmp.File("cache/x");
        using var barrier = new Barrier(2);
        var results = new string[2];
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            barrier.SignalAndWait();
            using var data = PreparedData.Prepare(files, DataSchema.Text, null, Tokenizers.Gpt2(), 1, 0.1, 0.1, cache);
            results[t] = data.Directory;
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(results[0], results[1]);
        Assert.Equal([results[0]], Directory.GetDirectories(cache)); // no temporary folder left behind
        using var opened = PreparedData.Open(results[0]);
        Assert.Equal(3000, opened.Train.Count + opened.Validation.Count + opened.Test.Count);
    }

    [Fact]
    public void Temporary_folders_of_killed_preparers_are_removed_once_abandoned()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", Jsonl(DataSchema.Text, 5));
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        var cache = tmp.File("cache/x");
        string directory;
        using (var data = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache)) directory = data.Directory;
        var old = tmp.Write($"cache/x/{Path.GetFileName(directory)}.tmp-dead/train/text.bin", "x");
        var live = tmp.Write($"cache/x/{Path.GetFileName(directory)}.tmp-live/train/text.bin", "x");
        var longAgo = DateTime.UtcNow - PreparedData.AbandonedAfter - TimeSpan.FromMinutes(5);
        File.SetLastWriteTimeUtc(old, longAgo);
        Directory.SetLastWriteTimeUtc(Path.GetDirectoryName(old)!, longAgo);
        Directory.SetLastWriteTimeUtc(Path.GetDirectoryName(Path.GetDirectoryName(old))!, longAgo);
        using (PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache)) { }
        Assert.False(File.Exists(old));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public void A_corrupted_shard_byte_is_an_error_naming_the_file()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", Jsonl(DataSchema.Text, 40));
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        var cache = tmp.File("cache/x");
        string directory;
        using (var data = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache)) directory = data.Directory;
        var shard = Path.Combine(directory, "train", "text.bin");
        var bytes = File.ReadAllBytes(shard);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(shard, bytes);
        var e = Assert.Throws<InvalidDataException>(() => PreparedData.Open(directory));
        Assert.StartsWith($"{shard}: SHA-256 ", e.Message);
        Assert.Contains("corrupt shard", e.Message);
        Assert.StartsWith(shard, Assert.Throws<InvalidDataException>(() => PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache)).Message);
        // A truncated offsets file is caught even without hashing.
        var idx = Path.Combine(directory, "train", "text.idx");
        File.WriteAllBytes(idx, File.ReadAllBytes(idx)[..^8]);
        Assert.StartsWith(idx, Assert.Throws<InvalidDataException>(() => PreparedData.Open(directory, verifyContent: false)).Message);
    }

    [Fact]
    public void Held_out_labels_unseen_in_training_are_reported_and_integer_labels_sort_numerically()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/train.jsonl", "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 2}\n{\"text\": \"c\", \"label\": 1}\n");
        tmp.Write("d/validation.jsonl", "{\"text\": \"d\", \"label\": 2}\n{\"text\": \"e\", \"label\": 7}\n{\"text\": \"f\", \"label\": \"x\"}\n{\"text\": \"g\", \"label\": 7}\n");
        tmp.Write("d/test.jsonl", "{\"text\": \"h\", \"label\": 10}\n");
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        using var data = PreparedData.Prepare(files, DataSchema.Classification, null, new CharTokenizer(), 1, 0.1, 0.1, tmp.File("cache"));
        Assert.Equal(["1", "2", "10"], data.Labels);
        Assert.Equal(["validation: 3 records with labels never seen in training: 7, x"], data.UnseenLabels);
        Assert.Equal([2, 1, 0], Enumerable.Range(0, 3).Select(i => data.Train.Value("label", i)));
        Assert.Equal([1, -1, -1, -1], Enumerable.Range(0, 4).Select(i => data.Validation.Value("label", i)));
        Assert.True(data.Manifest.Presplit);
        Assert.Null(data.Manifest.SplitRule); // every split came from files
    }

    [Fact]
    public async Task Hf_style_parquet_shards_prepare_by_their_split_names()
    {
        using var tmp = new TempFolder();
        var labels = new long[] { 0, 1, 1, 0, 2 };
        await Files.RecordReaderTests.WriteParquet(tmp.File("hf/data/train-00000-of-00002.parquet"), new Parquet.Schema.DataField<string>("sentence"),
            new Parquet.Schema.DataField<long>("label"), ["a", "bb", "ccc", "dd", "e"], labels);
        await Files.RecordReaderTests.WriteParquet(tmp.File("hf/data/train-00001-of-00002.parquet"), new Parquet.Schema.DataField<string>("sentence"),
            new Parquet.Schema.DataField<long>("label"), ["f"], [10L]);
        await Files.RecordReaderTests.WriteParquet(tmp.File("hf/data/test-00000-of-00001.parquet"), new Parquet.Schema.DataField<string>("sentence"),
            new Parquet.Schema.DataField<long>("label"), ["g", "h"], [2L, 3L]);
        var files = DataFileResolver.Resolve(tmp.Path, "hf");
        using var data = PreparedData.Prepare(files, DataSchema.Classification, new Dictionary<string, string> { ["text"] = "sentence" },
                                              new CharTokenizer(), 1, 0, 0, tmp.File("cache"));
        Assert.Equal(["0", "1", "2", "10"], data.Labels);
        Assert.Equal(6, data.Train.Count);
        Assert.Equal(0, data.Validation.Count);
        Assert.Equal([2, -1], Enumerable.Range(0, 2).Select(i => data.Test.Value("label", i)));
        Assert.Equal(["test: 1 records with labels never seen in training: 3"], data.UnseenLabels);
        Assert.Equal(new CharTokenizer().Encode("f"), data.Train.Row("text", 5));
        Assert.Equal(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/test-00000-of-00001.parquet"],
            data.Manifest.Sources.Select(s => s.Path.Replace("hf/", "")));
    }

    [Fact]
    public void Presplit_data_without_validation_files_takes_validation_out_of_train()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/train.jsonl", Jsonl(DataSchema.Text, 400));
        tmp.Write("d/test.jsonl", Jsonl(DataSchema.Text, 30));
        var files = DataFileResolver.Resolve(tmp.Path, "d");
        using var data = PreparedData.Prepare(files, DataSchema.Text, null, new CharTokenizer(), 1, 0.25, 0.1, tmp.File("cache"));
        Assert.Equal(30, data.Test.Count);
        Assert.InRange(data.Validation.Count, 60, 140);
        Assert.Equal(400, data.Train.Count + data.Validation.Count);
        Assert.Equal(new PreparedSplitRule(1, 0.25, 0), data.Manifest.SplitRule);
    }

    [Fact]
    public void No_training_records_and_bad_data_fail_before_anything_is_cached()
    {
        using var tmp = new TempFolder();
        var only = tmp.Write("d/validation.jsonl", Jsonl(DataSchema.Text, 3));
        var cache = tmp.File("cache");
        var e = Assert.Throws<DataFormatException>(() =>
            PreparedData.Prepare(new DataFileSet([], [only], [], true) { Root = tmp.Path }, DataSchema.Text, null, new CharTokenizer(), 1, 0.1, 0, cache));
        Assert.Contains("no training records (3 records, all assigned to validation or test)", e.Message);
        tmp.Write("bad/a.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"oops\"}\n");
        var bad = Assert.Throws<DataFormatException>(() =>
            PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "bad"), DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache));
        Assert.Equal("bad/a.jsonl:2: missing field 'text' (expected text; found: txt)", bad.Message);
        Assert.Empty(Directory.GetDirectories(cache));
    }

    [Fact]
    public void A_tokenizer_producing_ids_outside_its_size_is_caught()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.txt", "fine\n\nnot fine: ~");
        var e = Assert.Throws<InvalidOperationException>(() =>
            PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Text, null, new CharTokenizer(SpecialTokens.Count + 'z' + 1), 1, 0, 0, tmp.File("cache")));
        Assert.Equal($"the tokenizer produced id {SpecialTokens.Count + '~'}, outside [0, {SpecialTokens.Count + 'z' + 1}), for column text", e.Message);
    }

    [Fact]
    public void A_cancelled_prepare_leaves_nothing_behind()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", Jsonl(DataSchema.Text, 30_000));
        using var cts = new CancellationTokenSource();
        var cache = tmp.File("cache");
        var progress = new SyncProgress(_ => cts.Cancel()); // cancel after the first batch
        Assert.ThrowsAny<OperationCanceledException>(() =>
            PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, cache, progress, cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(cache));
    }

    [Fact]
    public void Progress_is_reported_up_to_all_bytes()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.jsonl", Jsonl(DataSchema.Text, 500));
        var reports = new List<PrepareProgress>();
        var progress = new SyncProgress(reports.Add);
        using var data = PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Text, null, new CharTokenizer(), 1, 0, 0, tmp.File("cache"), progress);
        var last = reports[^1];
        Assert.Equal(last.TotalBytes, last.BytesRead);
        Assert.Equal(500, last.Records);
        Assert.Equal(data.Train.TokenCount, last.Tokens);
    }

    private sealed class SyncProgress(Action<PrepareProgress> report) : IProgress<PrepareProgress>
    {
        public void Report(PrepareProgress value) => report(value);
    }
}
