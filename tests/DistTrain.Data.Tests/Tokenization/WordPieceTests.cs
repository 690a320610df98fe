using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Tokenization;

/// <summary>
/// BERT WordPiece vocabularies (vocab.txt) as a <c>kind: files</c> tokenizer: the ids are the file's line numbers behind
/// DistTrain's specials, spelled by BERT's rules (worked out by hand here), and the tokenizer saves and loads back.
/// </summary>
public sealed class WordPieceTests
{
    private static readonly string[] Vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "play", "##ing", "##s", ",", "!", "cafe", "[", "]", "cl", "##s2"];

    private static string Write(TempFolder dir, bool? lowercase = null)
    {
        File.WriteAllLines(Path.Combine(dir.Path, "vocab.txt"), Vocab);
        if (lowercase is bool l) File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), $"{{\"do_lower_case\": {(l ? "true" : "false")}}}");
        return dir.Path;
    }

    private static int Id(string token) => SpecialTokens.Count + Array.IndexOf(Vocab, token);

    [Fact]
    public void Text_encodes_by_bert_rules_to_line_numbers_behind_the_specials()
    {
        using var dir = new TempFolder();
        var t = Tokenizers.FromFiles(Write(dir));
        Assert.Equal("wordpiece", t.Kind);
        Assert.Equal(SpecialTokens.Count + Vocab.Length, t.Size);
        // Uncased by default: lowercased, accents stripped, punctuation split, longest-match pieces, [UNK] for the rest.
        Assert.Equal(new[] { Id("the"), Id("cat"), Id("##s"), Id(","), Id("play"), Id("##ing"), Id("!"), Id("cafe"), Id("[UNK]") },
            t.Encode("The CATs, playing! Café zebra"));
        // "[CLS]" in text is text: never the file's special, and never DistTrain's.
        Assert.DoesNotContain(Id("[CLS]"), t.Encode("[CLS] the"));
        Assert.Equal("the cats, playing!", t.Decode(t.Encode("the cats , playing !")).Replace(" ,", ",").Replace(" !", "!"));
    }

    [Fact]
    public void A_bert_folder_with_a_wordpiece_tokenizer_json_reads_its_vocab_txt()
    {
        using var dir = new TempFolder();
        var path = Write(dir);
        File.WriteAllText(Path.Combine(path, "tokenizer.json"), """{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {}}}""");
        var t = Tokenizers.FromFiles(path);
        Assert.Equal("wordpiece", t.Kind);
        Assert.Equal(new[] { Id("the"), Id("cat") }, t.Encode("the cat"));
    }

    [Fact]
    public void A_cased_vocabulary_keeps_case_and_the_tokenizer_saves_and_loads_back()
    {
        using var dir = new TempFolder();
        var cased = Tokenizers.FromFiles(Write(dir, lowercase: false));
        Assert.Equal(new[] { Id("[UNK]"), Id("cat") }, cased.Encode("The cat"));
        using var saved = new TempFolder();
        cased.Save(saved.Path);
        var loaded = Tokenizers.Load(saved.Path);
        Assert.Equal(cased.Identity, loaded.Identity);
        Assert.Equal(cased.Encode("The cat playing"), loaded.Encode("The cat playing"));
        Assert.NotEqual(Tokenizers.FromFiles(Write(dir, lowercase: true)).Identity, cased.Identity);
    }
}
