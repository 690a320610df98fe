using DistTrain.Data.Tokenization;
using Xunit.Abstractions;

namespace DistTrain.Data.Tests.Tokenization;

public sealed class SubVocabularyTests(ITestOutputHelper output)
{
    private static SubVocabulary Vocab => SharedBrown.Vocabulary;

    public static TheoryData<string> RoundTripTexts => new()
    {
        "",
        "Hello, world!",
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election.",
        "naïve café, Zürich, Ångström, São Paulo",
        "東京都 北京 서울 Москва العربية עברית हिन्दी",
        "emoji 🚀👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇩🇪🇯🇵",
        "tabs\tand\nnewlines\r\n  and   runs of spaces    ",
        "<pad> <bos> <extra_id_0> <|endoftext|> [CLS] literal special names",
        "\u0000\u0001 control \u007f chars \uFEFF BOM",
        "Xylophonist zymurgy quokka floccinaucinihilipilification",
    };

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Decode_of_encode_is_the_identity(string text)
    {
        var ids = Vocab.Encode(text);
        Assert.Equal(text, Vocab.Decode(ids));
        Assert.All(ids, id => Assert.InRange(id, 0, Vocab.Size - 1));
    }

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Plain_text_never_produces_special_ids(string text)
    {
        Assert.DoesNotContain(Vocab.Encode(text), SpecialTokens.IsSpecial);
    }

    [Fact]
    public void Every_Brown_validation_sentence_round_trips()
    {
        foreach (var doc in SharedBrown.Split.Validation)
            foreach (var sentence in doc.Sentences)
                Assert.Equal(sentence.Text, Vocab.Decode(Vocab.Encode(sentence.Text)));
    }

    [Fact]
    public void Size_and_layout_are_fixed()
    {
        Assert.Equal(CorpusVocabulary.DefaultSize, Vocab.Size);
        Assert.Equal(38, SpecialTokens.Count);
        Assert.Equal(["<pad>", "<bos>", "<eos>", "<cls>", "<sep>", "<mask>"], SpecialTokens.Names.Take(6));
        Assert.Equal("<extra_id_31>", SpecialTokens.Names[SpecialTokens.Sentinel(31)]);
        Assert.Equal(0, SpecialTokens.Pad);
        Assert.Equal("A", Vocab.Decode([SubVocabulary.ByteOffset + 'A']));
    }

    [Fact]
    public void Frequent_word_is_one_id_and_rare_word_falls_back_to_bytes()
    {
        var the = Vocab.Encode(" the");
        Assert.Single(the);
        Assert.True(the[0] >= SubVocabulary.FirstMergedId);
        // " the" is the most frequent GPT-2 token in Brown, so it gets the first merged id.
        Assert.Equal(SubVocabulary.FirstMergedId, the[0]);

        const string rare = " floccinaucinihilipilification";
        var gpt2 = Gpt2Tokenizer.Shared.Encode(rare);
        var ids = Vocab.Encode(rare);
        Assert.Contains(gpt2, g => !Vocab.Contains(g)); // some GPT-2 piece is outside the sub-vocabulary ...
        Assert.True(ids.Length > gpt2.Count);           // ... so it is spelled in bytes, making the sequence longer
        Assert.Contains(ids, id => id is >= SubVocabulary.ByteOffset and < SubVocabulary.FirstMergedId);
        Assert.Equal(rare, Vocab.Decode(ids));
    }

    private static readonly Lazy<SubVocabulary> PiecesLazy =
        new(() => CorpusVocabulary.Build(SharedBrown.Split.Train, fallback: FallbackMode.Pieces));

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Pieces_fallback_round_trips_and_never_produces_specials(string text)
    {
        var ids = PiecesLazy.Value.Encode(text);
        Assert.Equal(text, PiecesLazy.Value.Decode(ids));
        Assert.DoesNotContain(ids, SpecialTokens.IsSpecial);
    }

    [Fact]
    public void Pieces_fallback_spells_rare_words_with_fewer_ids_than_bytes()
    {
        const string rare = " floccinaucinihilipilification";
        var pieces = PiecesLazy.Value.Encode(rare);
        Assert.Equal(Vocab.MergedGpt2Ids, PiecesLazy.Value.MergedGpt2Ids); // same ids, only the spelling differs
        Assert.True(pieces.Length < Vocab.Encode(rare).Length);
        Assert.Contains(pieces, id => id >= SubVocabulary.FirstMergedId);
        var path = Path.Combine(Path.GetTempPath(), $"subvocab-pieces-{Environment.ProcessId}.json");
        PiecesLazy.Value.Save(path);
        Assert.Equal(FallbackMode.Pieces, SubVocabulary.Load(path).Fallback);
        Assert.Equal(pieces, SubVocabulary.Load(path).Encode(rare));
        File.Delete(path);
    }

    [Fact]
    public void Specials_decode_to_names_or_vanish()
    {
        int[] ids = [SpecialTokens.Bos, .. Vocab.Encode("Hi"), SpecialTokens.Sentinel(3), SpecialTokens.Eos];
        Assert.Equal("<bos>Hi<extra_id_3><eos>", Vocab.Decode(ids));
        Assert.Equal("Hi", Vocab.Decode(ids, skipSpecials: true));
    }

    [Fact]
    public void Save_and_load_give_the_same_vocabulary()
    {
        var path = Path.Combine(Path.GetTempPath(), $"subvocab-{Environment.ProcessId}.json");
        Vocab.Save(path);
        var loaded = SubVocabulary.Load(path);
        Assert.Equal(FallbackMode.Bytes, loaded.Fallback);
        Assert.Equal(Vocab.Size, loaded.Size);
        Assert.Equal(Vocab.MergedGpt2Ids, loaded.MergedGpt2Ids);
        Assert.Equal(Vocab.Encode("Grand Jury 🚀"), loaded.Encode("Grand Jury 🚀"));
        output.WriteLine($"vocabulary file: {new FileInfo(path).Length} bytes");
        Assert.True(new FileInfo(path).Length < 100_000);
        File.Delete(path);
    }

    [Fact]
    public void A_file_with_other_specials_is_refused()
    {
        var path = Path.Combine(Path.GetTempPath(), $"subvocab-bad-{Environment.ProcessId}.json");
        Vocab.Save(path);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"<mask>\"", "\"<unk>\""));
        var e = Assert.Throws<InvalidDataException>(() => SubVocabulary.Load(path));
        Assert.Contains("special tokens differ", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Building_twice_gives_the_same_ids()
    {
        var again = CorpusVocabulary.Build(SharedBrown.Split.Train);
        Assert.Equal(Vocab.MergedGpt2Ids, again.MergedGpt2Ids);
    }

    [Fact]
    public void Vocab_stats_on_Brown()
    {
        // The figures in docs/data.md come from this test's output (and `disttrain data vocab-stats`).
        var train = VocabStats.Measure(Vocab, SharedBrown.Split.Train);
        var heldOut = VocabStats.Measure(Vocab, SharedBrown.Split.Validation.Concat(SharedBrown.Split.Test));
        output.WriteLine($"train: {train}, fallback {train.FallbackShare:P2}, growth {train.LengthGrowth:F4}");
        output.WriteLine($"held-out: {heldOut}, fallback {heldOut.FallbackShare:P2}, growth {heldOut.LengthGrowth:F4}");
        output.WriteLine($"params at H=256: gpt2 {VocabStats.EmbeddingAndSoftmaxParameters(50257, 256):N0}, " +
                         $"sub {VocabStats.EmbeddingAndSoftmaxParameters(Vocab.Size, 256):N0}");
        Assert.Equal(50257, Gpt2Tokenizer.Shared.VocabularySize);
        Assert.InRange(train.FallbackShare, 0, 0.10);
        Assert.True(heldOut.FallbackShare >= train.FallbackShare); // held-out text saw no vocabulary fitting
        // Each fallback token becomes at least two byte ids (single bytes are never fallback).
        Assert.True(train.SubTokens >= train.Gpt2Tokens + train.FallbackGpt2Tokens);
    }
}
