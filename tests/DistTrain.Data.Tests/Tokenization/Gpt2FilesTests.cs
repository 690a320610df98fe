using System.Text.Json.Nodes;
using DistTrain.Data.Tokenization;
using Xunit.Abstractions;

namespace DistTrain.Data.Tests.Tokenization;

/// <summary>
/// GPT-2 itself written out as vocab.json + merges.txt and read back as a user's BPE files must tokenize exactly like
/// the bundled GPT-2: a full-size check of the BPE path (50,000 merges) against an independent implementation (tiktoken).
/// </summary>
public sealed class Gpt2FilesTests(ITestOutputHelper output)
{
    [Fact]
    public void Gpt2_as_user_files_tokenizes_like_the_bundled_gpt2()
    {
        using var tmp = new TempFolder();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        WriteGpt2Files(tmp.Path);
        output.WriteLine($"derived GPT-2 merges in {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        var files = Tokenizers.FromFiles(tmp.Path);
        output.WriteLine($"loaded the files in {clock.ElapsedMilliseconds} ms");
        var gpt2 = Tokenizers.Gpt2();
        Assert.Equal(gpt2.Size, files.Size);
        var texts = SharedBrown.Split.Validation.Take(10).SelectMany(d => d.Sentences).Select(s => s.Text)
            .Append("naïve café — 東京 🚀👩‍👩‍👧‍👦 It's 1,234.5 ''quotes''\n\n\ttabs   spaces  ");
        foreach (var text in texts)
        {
            Assert.Equal(gpt2.Encode(text), files.Encode(text));
            Assert.Equal(text, files.Decode(files.Encode(text)));
        }
    }

    // GPT-2's merges are not shipped offline, but follow from its ranks: the merge that makes token t is the pair
    // BPE reaches when it spells t's bytes with the merges of lower rank only.
    private static void WriteGpt2Files(string directory)
    {
        var g = Gpt2Tokenizer.Shared;
        var vocab = new JsonObject();
        var ranks = new Dictionary<(string, string), int>();
        var merges = new List<string>();
        for (var id = 0; id < g.VocabularySize; id++)
        {
            var bytes = g.TokenBytes(id).ToArray();
            var token = string.Concat(bytes.Select(ByteLevelAlphabet.Char));
            if (id == 50256) token = "<|endoftext|>";
            vocab[token] = id;
            if (bytes.Length < 2 || id == 50256) continue;
            var symbols = bytes.Select(b => ByteLevelAlphabet.Char(b).ToString()).ToList();
            while (symbols.Count > 2)
            {
                var best = -1;
                for (var i = 0; i < symbols.Count - 1; i++)
                    if (ranks.TryGetValue((symbols[i], symbols[i + 1]), out var r) && (best < 0 || r < ranks[(symbols[best], symbols[best + 1])])) best = i;
                if (best < 0) break;
                symbols[best] += symbols[best + 1];
                symbols.RemoveAt(best + 1);
            }
            Assert.Equal(2, symbols.Count);
            ranks[(symbols[0], symbols[1])] = merges.Count;
            merges.Add($"{symbols[0]} {symbols[1]}");
        }
        File.WriteAllText(Path.Combine(directory, "vocab.json"), vocab.ToJsonString());
        File.WriteAllLines(Path.Combine(directory, "merges.txt"), ["#version: 0.2", .. merges]);
    }
}
