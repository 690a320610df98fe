using DistTrain.Data.Datasets;
using DistTrain.Data.Files;
using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Shards;

/// <summary>Preparing tokenizes in parallel and training reads from several threads: both must equal the sequential result.</summary>
public sealed class ConcurrencyTests
{
    private static readonly string[] Texts = Enumerable.Range(0, 400)
        .Select(i => string.Join(' ', Enumerable.Range(0, 3 + i % 17).Select(k => PreparedDataTests.Vocabulary[(i * 7 + k * 3) % PreparedDataTests.Vocabulary.Length])) + $" #{i}")
        .ToArray();

    [Fact]
    public void Tokenizers_encode_the_same_from_many_threads()
    {
        using var tmp = new TempFolder();
        var bpeDir = tmp.File("bpe/x");
        // A three-merge byte-level BPE: " t", " th", " the".
        var vocab = new System.Text.Json.Nodes.JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.Char((byte)b).ToString()] = b;
        vocab[ByteLevelAlphabet.Spell(" t")] = 256;
        vocab[ByteLevelAlphabet.Spell(" th")] = 257;
        vocab[ByteLevelAlphabet.Spell(" the")] = 258;
        tmp.Write("bpe/vocab.json", vocab.ToJsonString());
        tmp.Write("bpe/merges.txt", $"#version: 0.2\n{ByteLevelAlphabet.Spell(" ")} t\n{ByteLevelAlphabet.Spell(" t")} h\n{ByteLevelAlphabet.Spell(" th")} e\n");
        foreach (var tokenizer in new[] { Tokenizers.Gpt2(), Tokenizers.FromFiles(tmp.File("bpe")), SharedBrown.Vocabulary })
        {
            var sequential = Texts.Select(tokenizer.Encode).ToArray();
            var parallel = new int[Texts.Length][];
            Parallel.For(0, Texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => parallel[i % Texts.Length] = tokenizer.Encode(Texts[i % Texts.Length]));
            Assert.Equal(sequential, parallel);
        }
    }

    [Fact]
    public void Shard_reads_from_many_threads_equal_sequential_reads()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/a.txt", string.Join("\n\n", Texts));
        using var data = PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Text, null, Tokenizers.Gpt2(), 1, 0, 0, tmp.File("cache"));
        var lm = new ShardLmDataset(data.Train, 16);
        var sequential = Enumerable.Range(0, lm.Count).Select(i => lm[i].InputIds).ToArray();
        var parallel = new int[lm.Count][];
        Parallel.For(0, lm.Count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => parallel[i] = lm[i].InputIds);
        Assert.Equal(sequential, parallel);
    }
}
