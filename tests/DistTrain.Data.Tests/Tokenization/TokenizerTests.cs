using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Tokenization;

public sealed class TokenizerTests
{
    private const string Unicode = "naïve café, Zürich — 東京都 서울 Москва العربية 🚀👩‍👩‍👧‍👦🇩🇪 tabs\tand\nnewlines  runs   <pad> <|endoftext|> ok";

    public static TheoryData<string> Texts => new()
    {
        "", "Hello, world!", Unicode, "\u0000\u0001 control \u007f chars \uFEFF", "the other thing, there they were",
    };

    // ---- GPT-2 ----

    [Theory]
    [MemberData(nameof(Texts))]
    public void Gpt2_round_trips_exactly_and_never_produces_specials(string text)
    {
        var gpt2 = Tokenizers.Gpt2();
        var ids = gpt2.Encode(text);
        Assert.Equal(text, gpt2.Decode(ids));
        Assert.All(ids, id => Assert.InRange(id, SpecialTokens.Count, gpt2.Size - 1));
    }

    [Fact]
    public void Gpt2_ids_are_the_library_ids_shifted_behind_the_specials()
    {
        var gpt2 = Tokenizers.Gpt2();
        Assert.Equal(50257 + SpecialTokens.Count, gpt2.Size);
        Assert.Equal(Gpt2Tokenizer.Shared.Encode(" the quick brown fox").Select(id => id + SpecialTokens.Count), gpt2.Encode(" the quick brown fox"));
        Assert.Equal("<bos>hi<eos>", gpt2.Decode([SpecialTokens.Bos, .. gpt2.Encode("hi"), SpecialTokens.Eos]));
        Assert.Equal("hi", gpt2.Decode([SpecialTokens.Bos, .. gpt2.Encode("hi")], skipSpecials: true));
        // GPT-2's own <|endoftext|> is text here, never its special id.
        Assert.DoesNotContain(50256 + SpecialTokens.Count, gpt2.Encode("a<|endoftext|>b"));
    }

    [Fact]
    public void Gpt2_saves_and_loads_by_descriptor()
    {
        using var tmp = new TempFolder();
        Tokenizers.Gpt2().Save(tmp.Path);
        var loaded = Tokenizers.Load(tmp.Path);
        Assert.Equal("gpt2", loaded.Identity);
        Assert.Equal(Tokenizers.Gpt2().Size, loaded.Size);
    }

    // ---- sub-vocabulary ----

    [Fact]
    public void Subvocab_is_a_tokenizer_whose_identity_survives_save_and_load()
    {
        using var tmp = new TempFolder();
        ITextTokenizer vocab = SharedBrown.Vocabulary;
        Assert.Equal("subvocab", vocab.Kind);
        Assert.StartsWith("subvocab:sha256:", vocab.Identity);
        vocab.Save(tmp.Path);
        Assert.True(File.Exists(Path.Combine(tmp.Path, SubVocabulary.FileName)));
        var loaded = Tokenizers.Load(tmp.Path);
        Assert.Equal(vocab.Identity, loaded.Identity);
        Assert.Equal(vocab.Encode(Unicode), loaded.Encode(Unicode));
        // The old single-file API still works and gives the same identity.
        var file = Path.Combine(tmp.Path, "old.json");
        SharedBrown.Vocabulary.Save(file);
        Assert.Equal(vocab.Identity, ((ITextTokenizer)SubVocabulary.Load(file)).Identity);
    }

    [Fact]
    public void Subvocab_from_user_texts_counts_gpt2_pieces()
    {
        var texts = Enumerable.Range(0, 2000).Select(i => $"The committee met on day {i % 30} and the committee agreed. Zyxwv {i % 7}.");
        var vocab = CorpusVocabulary.FromTexts(texts, targetSize: 400, FallbackMode.Pieces, "test");
        Assert.InRange(vocab.Size, SubVocabulary.FirstMergedId + 10, 400); // as many merged tokens as the texts have, at most 400 ids
        var committee = Gpt2Tokenizer.Shared.Encode(" committee").Single();
        Assert.True(vocab.Contains(committee));
        Assert.Equal(" committee", vocab.Decode(vocab.Encode(" committee")));
        Assert.Single(vocab.Encode(" committee"));
        Assert.Equal(Unicode, vocab.Decode(vocab.Encode(Unicode)));
    }

    [Fact]
    public void Tampered_saved_tokenizer_is_refused_naming_the_file()
    {
        using var tmp = new TempFolder();
        ((ITextTokenizer)SharedBrown.Vocabulary).Save(tmp.Path);
        var descriptor = Path.Combine(tmp.Path, Tokenizers.FileName);
        File.WriteAllText(descriptor, File.ReadAllText(descriptor).Replace("subvocab:sha256:", "subvocab:sha256:00"));
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.Load(tmp.Path));
        Assert.Contains(descriptor, e.Message);
        File.WriteAllText(descriptor, "{ not json");
        Assert.Contains(descriptor, Assert.Throws<InvalidDataException>(() => Tokenizers.Load(tmp.Path)).Message);
        Assert.Contains("not found", Assert.Throws<InvalidDataException>(() => Tokenizers.Load(Path.Combine(tmp.Path, "nowhere"))).Message);
    }

    // ---- user BPE files ----

    [Theory]
    [MemberData(nameof(Texts))]
    public void User_bpe_round_trips_and_matches_a_reference_bpe(string text)
    {
        using var tmp = new TempFolder();
        var bpe = TinyBpe.Write(tmp.Path);
        var tokenizer = Tokenizers.FromFiles(tmp.Path);
        Assert.Equal("bpe", tokenizer.Kind);
        Assert.Equal(SpecialTokens.Count + bpe.Vocab.Count, tokenizer.Size);
        var ids = tokenizer.Encode(text);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal(bpe.Encode(text).Select(id => id + SpecialTokens.Count), ids);
    }

    [Fact]
    public void User_bpe_merges_frequent_words_and_survives_save_and_load()
    {
        using var tmp = new TempFolder();
        TinyBpe.Write(Path.Combine(tmp.Path, "files"));
        var tokenizer = Tokenizers.FromFiles(Path.Combine(tmp.Path, "files"));
        Assert.Single(tokenizer.Encode(" the")); // learned from the training text
        Assert.StartsWith("bpe:sha256:", tokenizer.Identity);
        tokenizer.Save(Path.Combine(tmp.Path, "saved"));
        var loaded = Tokenizers.Load(Path.Combine(tmp.Path, "saved"));
        Assert.Equal(tokenizer.Identity, loaded.Identity);
        Assert.Equal(tokenizer.Encode(Unicode), loaded.Encode(Unicode));
    }

    [Fact]
    public void Hf_tokenizer_json_with_a_byte_level_bpe_gives_the_same_tokenizer()
    {
        using var tmp = new TempFolder();
        var bpe = TinyBpe.Write(Path.Combine(tmp.Path, "files"));
        var json = tmp.Write("hf/tokenizer.json", bpe.TokenizerJson().ToJsonString());
        var fromFiles = Tokenizers.FromFiles(Path.Combine(tmp.Path, "files"));
        var fromJson = Tokenizers.FromFiles(json);
        Assert.Equal(fromFiles.Identity, fromJson.Identity);
        Assert.Equal(fromFiles.Encode(Unicode), fromJson.Encode(Unicode));
        Assert.Equal(fromJson.Identity, Tokenizers.FromFiles(Path.Combine(tmp.Path, "hf")).Identity); // the folder finds it too
    }

    [Fact]
    public void Hf_tokenizer_json_with_a_split_regex_uses_that_regex()
    {
        using var tmp = new TempFolder();
        var bpe = TinyBpe.Write(Path.Combine(tmp.Path, "files"));
        var root = bpe.TokenizerJson();
        // Digits one at a time (as Llama 3's pattern does in groups of three): "2024" becomes four pieces.
        root["pre_tokenizer"] = JsonNode.Parse("""
            {"type":"Sequence","pretokenizers":[
              {"type":"Split","pattern":{"Regex":" ?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},
              {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}
            """);
        var tokenizer = Tokenizers.FromFiles(tmp.Write("tokenizer.json", root.ToJsonString()));
        Assert.Equal(4, tokenizer.Encode("2024").Length);
        Assert.Equal("in 2024, ok", tokenizer.Decode(tokenizer.Encode("in 2024, ok")));
    }

    [Fact]
    public void Hf_ignore_merges_takes_a_pre_token_the_vocabulary_holds_whole()
    {
        using var tmp = new TempFolder();
        var bpe = TinyBpe.Write(Path.Combine(tmp.Path, "files"));
        var root = bpe.TokenizerJson();
        // " zebra" is in the vocabulary but no merge makes it; with ignore_merges (Llama 3) it is still one token.
        var zebra = bpe.Vocab.Count;
        root["model"]!["vocab"]![ByteLevelAlphabet.Spell(" zebra")] = zebra;
        var plain = Tokenizers.FromFiles(tmp.Write("plain/tokenizer.json", root.ToJsonString()));
        root["model"]!["ignore_merges"] = true;
        var ignoring = Tokenizers.FromFiles(tmp.Write("ignoring/tokenizer.json", root.ToJsonString()));
        Assert.Equal(6, plain.Encode(" zebra").Length);
        Assert.Equal([SpecialTokens.Count + zebra], ignoring.Encode(" zebra"));
        Assert.NotEqual(plain.Identity, ignoring.Identity);
        foreach (string text in Texts)
        {
            Assert.Equal(text, ignoring.Decode(ignoring.Encode(text)));
            if (!text.Contains("zebra")) Assert.Equal(plain.Encode(text), ignoring.Encode(text));
        }
        ignoring.Save(Path.Combine(tmp.Path, "saved"));
        var loaded = Tokenizers.Load(Path.Combine(tmp.Path, "saved"));
        Assert.Equal(ignoring.Identity, loaded.Identity);
        Assert.Equal([SpecialTokens.Count + zebra], loaded.Encode(" zebra"));
    }

    [Fact]
    public void Hf_nfc_normalizer_composes_text_before_encoding()
    {
        using var tmp = new TempFolder();
        var bpe = TinyBpe.Write(Path.Combine(tmp.Path, "files"));
        var root = bpe.TokenizerJson();
        root["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"NFC"}]}""");
        var nfc = Tokenizers.FromFiles(tmp.Write("nfc/tokenizer.json", root.ToJsonString()));
        const string decomposed = "cafe\u0301", composed = "caf\u00e9";
        Assert.Equal(nfc.Encode(composed), nfc.Encode(decomposed));
        Assert.Equal(composed, nfc.Decode(nfc.Encode(decomposed)));
        Assert.NotEqual(Tokenizers.FromFiles(Path.Combine(tmp.Path, "files")).Identity, nfc.Identity);
        nfc.Save(Path.Combine(tmp.Path, "saved"));
        Assert.Equal(nfc.Encode(decomposed), Tokenizers.Load(Path.Combine(tmp.Path, "saved")).Encode(decomposed));
    }

    [Theory]
    [InlineData("""{"model":{"type":"WordPiece","vocab":{"a":0}}}""", "model type 'WordPiece' is not supported; only BPE")]
    [InlineData("""{"model":{"type":"Unigram","vocab":[]}}""", "model type 'Unigram' is not supported")]
    [InlineData("""{"normalizer":{"type":"Lowercase"},"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "normalizer 'Lowercase' is not supported")]
    [InlineData("""{"normalizer":{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Strip"}]},"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "normalizer 'Strip' is not supported")]
    [InlineData("""{"pre_tokenizer":{"type":"Metaspace"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "pre_tokenizer 'Metaspace' is not supported")]
    [InlineData("""{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}""", "not a byte-level BPE vocabulary: no token for byte 0x00")]
    [InlineData("""{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","byte_fallback":true,"vocab":{},"merges":[]}}""", "byte_fallback")]
    [InlineData("""{"model": [1, 2""", "not valid JSON")]
    public void Unsupported_or_malformed_tokenizer_json_is_refused_naming_the_file(string json, string expected)
    {
        using var tmp = new TempFolder();
        var path = tmp.Write("tokenizer.json", json);
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.FromFiles(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Malformed_merges_file_names_its_line()
    {
        using var tmp = new TempFolder();
        TinyBpe.Write(tmp.Path);
        var merges = Path.Combine(tmp.Path, "merges.txt");
        File.AppendAllText(merges, "one-token-only\n");
        var lines = File.ReadAllLines(merges).Length;
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.FromFiles(tmp.Path));
        Assert.Contains($"{merges}:{lines}: not a merge 'a b'", e.Message);
    }

    [Fact]
    public void A_folder_without_tokenizer_files_lists_what_it_found()
    {
        using var tmp = new TempFolder();
        tmp.Write("vocab.json", "{}");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.FromFiles(tmp.Path));
        Assert.Contains("expected tokenizer.json, vocab.json + merges.txt, or vocab.txt (WordPiece); found: vocab.json", e.Message);
    }

    /// <summary>A byte-level BPE learned here from a few sentences, with an independent (slow, obvious) encoder as the reference.</summary>
    private sealed class TinyBpe
    {
        private static readonly Regex Pieces = new(BpeTextTokenizer.Gpt2Pattern);

        public Dictionary<string, int> Vocab { get; } = new(StringComparer.Ordinal);
        public List<(string A, string B)> Merges { get; } = [];

        public static TinyBpe Write(string directory)
        {
            var bpe = Learn("the other thing: the theory is there; the three threw them then. the end, the answer, they thought. 2024 and 1999", 40);
            Directory.CreateDirectory(directory);
            var vocab = new JsonObject();
            foreach (var (token, id) in bpe.Vocab) vocab[token] = id;
            File.WriteAllText(Path.Combine(directory, "vocab.json"), vocab.ToJsonString());
            File.WriteAllLines(Path.Combine(directory, "merges.txt"), ["#version: 0.2", .. bpe.Merges.Select(m => $"{m.A} {m.B}")]);
            return bpe;
        }

        public JsonObject TokenizerJson()
        {
            var vocab = new JsonObject();
            foreach (var (token, id) in Vocab) vocab[token] = id;
            return new JsonObject
            {
                ["version"] = "1.0",
                ["added_tokens"] = new JsonArray(),
                ["normalizer"] = null,
                ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
                ["post_processor"] = null,
                ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
                ["model"] = new JsonObject
                {
                    ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                    ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                    ["vocab"] = vocab,
                    ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)new JsonArray(m.A, m.B)).ToArray()),
                },
            };
        }

        // Textbook BPE training: start from the 256 byte symbols, merge the most frequent adjacent pair, repeat.
        private static TinyBpe Learn(string text, int merges)
        {
            var bpe = new TinyBpe();
            for (var b = 0; b < 256; b++) bpe.Vocab[ByteLevelAlphabet.Char((byte)b).ToString()] = b;
            var words = Pieces.Matches(text).Select(m => ByteLevelAlphabet.Spell(m.Value).Select(c => c.ToString()).ToList()).ToList();
            for (var k = 0; k < merges; k++)
            {
                var best = words.SelectMany(w => w.Zip(w.Skip(1)))
                    .GroupBy(p => p).OrderByDescending(g => g.Count()).ThenBy(g => g.Key.First + " " + g.Key.Second, StringComparer.Ordinal)
                    .FirstOrDefault();
                if (best is null) break;
                var (a, c) = best.Key;
                bpe.Merges.Add((a, c));
                bpe.Vocab.TryAdd(a + c, bpe.Vocab.Count);
                foreach (var w in words) MergeAll(w, a, c);
            }
            return bpe;
        }

        public int[] Encode(string text)
        {
            var ranks = Merges.Select((m, i) => (m, i)).ToDictionary(p => p.m, p => p.i);
            var ids = new List<int>();
            foreach (Match piece in Pieces.Matches(text))
            {
                var symbols = ByteLevelAlphabet.Spell(piece.Value).Select(c => c.ToString()).ToList();
                while (true)
                {
                    var pairs = symbols.Zip(symbols.Skip(1)).Where(ranks.ContainsKey).ToList();
                    if (pairs.Count == 0) break;
                    var (a, b) = pairs.MinBy(p => ranks[p]);
                    MergeAll(symbols, a, b);
                }
                ids.AddRange(symbols.Select(s => Vocab[s]));
            }
            return ids.ToArray();
        }

        private static void MergeAll(List<string> symbols, string a, string b)
        {
            for (var i = 0; i < symbols.Count - 1; i++)
                if (symbols[i] == a && symbols[i + 1] == b)
                {
                    symbols[i] = a + b;
                    symbols.RemoveAt(i + 1);
                }
        }
    }
}
