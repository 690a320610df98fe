namespace DistTrain.Cli.Tests.Commands;

/// <summary>`disttrain data prepare` and `disttrain run` on files of the user's own, as a user runs them.</summary>
public sealed class DataCommandTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    private static string Spec(string root, string dataPath) => WriteSpec(root, $$$"""
        name: own
        stages:
          - {name: lm, kind: pretrain, objective: clm, model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 400}, data: {path: {{{dataPath}}}, seq_len: 32}, train: {steps: 3, batch_size: 4}}
        """);

    private static string WriteSpec(string root, string text)
    {
        var file = Path.Combine(root, "spec.yaml");
        File.WriteAllText(file, text);
        return file;
    }

    [Fact]
    public void Prepare_tokenizes_once_into_the_cache_and_run_reads_it()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(Path.Combine(dir.Path, "corpus"));
        File.WriteAllLines(Path.Combine(dir.Path, "corpus", "a.jsonl"),
            Enumerable.Range(0, 200).Select(i => $$"""{"text": "Document {{i}} says the quick brown fox jumps over the lazy dog {{i % 7}} times."}"""));
        var spec = Spec(dir.Path, "corpus");

        var (code, output, error) = CliProcess.Run(Deadline, "data", "prepare", spec);
        Assert.True(code == 0, error + output);
        Assert.Contains("lm: corpus →", output);
        Assert.Contains("records (train / validation / test)", output);
        var cache = Path.Combine(dir.Path, ".disttrain-cache");
        var prepared = Directory.GetDirectories(cache).Where(d => File.Exists(Path.Combine(d, "manifest.json"))).ToList();
        Assert.Single(prepared);

        (code, output, error) = CliProcess.Run(Deadline, "run", spec, "--out", Path.Combine(dir.Path, "runs"));
        Assert.True(code == 0, error + output);
        // The run reused the prepared shards (same key), it did not tokenize again into another folder.
        Assert.Equal(prepared, Directory.GetDirectories(cache).Where(d => File.Exists(Path.Combine(d, "manifest.json"))).ToList());
    }

    [Fact]
    public void Run_on_a_malformed_file_exits_2_naming_file_and_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "bad.jsonl"), "{\"text\": \"fine\"}\n{\"text\": \"broken\"\n");
        var (code, output, error) = CliProcess.Run(Deadline, "run", Spec(dir.Path, "bad.jsonl"), "--out", Path.Combine(dir.Path, "runs"));
        Assert.True(code == 2, $"exit {code}: {error}{output}");
        Assert.Contains("bad.jsonl:2", error);
        Assert.DoesNotContain("   at ", error);   // a message for the user, not a stack trace
    }

    [Fact]
    public void Run_naming_a_missing_file_exits_2_before_any_stage()
    {
        using var dir = new TempDir();
        var (code, output, error) = CliProcess.Run(Deadline, "run", Spec(dir.Path, "nowhere.jsonl"), "--out", Path.Combine(dir.Path, "runs"));
        Assert.Equal(2, code);
        Assert.Contains("stages[0].data.path: 'nowhere.jsonl' does not exist under the data root", error);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "runs")), output);
    }
}
