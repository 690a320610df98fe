using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using DistTrain.Data.Corpora;

namespace DistTrain.Data.Tests.Corpora;

public sealed class BrownCorpusTests
{
    private static readonly BrownManifest Manifest = BrownManifest.LoadDefault();

    [Fact]
    public void Counts_match_the_manifest_computed_from_the_source_files()
    {
        var corpus = SharedBrown.Corpus;
        var sentences = corpus.Documents.SelectMany(d => d.Sentences).ToList();
        Assert.Equal(Manifest.Documents, corpus.Documents.Count);
        Assert.Equal(Manifest.Genres, corpus.Genres.Count);
        Assert.Equal(Manifest.Sentences, sentences.Count);
        Assert.Equal(Manifest.Tokens, sentences.Sum(s => s.Words.Count));
        Assert.Equal(Manifest.DistinctTags, sentences.SelectMany(s => s.Words).Select(w => w.Tag).Distinct().Count());
        foreach (var (genre, counts) in Manifest.PerGenre)
        {
            var docs = corpus.Documents.Where(d => d.Genre == genre).ToList();
            Assert.Equal(counts, new BrownManifest.GenreCounts(docs.Count, docs.Sum(d => d.Sentences.Count), docs.Sum(d => d.WordCount)));
        }
    }

    [Fact]
    public void Counts_match_the_NLTK_reference_reading()
    {
        // nltk.corpus.brown: 500 fileids, 15 categories, 57,340 sents, 1,161,192 words, 472 distinct tags.
        var corpus = SharedBrown.Corpus;
        Assert.Equal(500, corpus.Documents.Count);
        Assert.Equal(15, corpus.Genres.Count);
        Assert.Equal(57_340, corpus.Documents.Sum(d => d.Sentences.Count));
        Assert.Equal(1_161_192, corpus.Documents.Sum(d => d.WordCount));
        Assert.Equal(472, Manifest.DistinctTags);
    }

    [Fact]
    public void Genres_follow_cats_txt()
    {
        // cats.txt counts per genre (documents), e.g. news = ca01..ca44.
        var expected = new Dictionary<string, int>
        {
            ["adventure"] = 29, ["belles_lettres"] = 75, ["editorial"] = 27, ["fiction"] = 29, ["government"] = 30,
            ["hobbies"] = 36, ["humor"] = 9, ["learned"] = 80, ["lore"] = 48, ["mystery"] = 24, ["news"] = 44,
            ["religion"] = 17, ["reviews"] = 17, ["romance"] = 29, ["science_fiction"] = 6,
        };
        var actual = SharedBrown.Corpus.Documents.GroupBy(d => d.Genre).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(expected, actual);
        // The genre letter in the file name agrees with cats.txt (ca = news, cr = humor).
        Assert.All(SharedBrown.Corpus.Documents.Where(d => d.Id.StartsWith("ca")), d => Assert.Equal("news", d.Genre));
        Assert.All(SharedBrown.Corpus.Documents.Where(d => d.Id.StartsWith("cr")), d => Assert.Equal("humor", d.Genre));
    }

    [Fact]
    public void First_sentence_keeps_words_and_original_tags()
    {
        var first = SharedBrown.Corpus.Documents[0];
        Assert.Equal(("ca01", "news"), (first.Id, first.Genre));
        var words = first.Sentences[0].Words;
        Assert.Equal(new TaggedWord("The", "at"), words[0]);
        Assert.Equal(new TaggedWord("Fulton", "np-tl"), words[1]);
        Assert.Equal(new TaggedWord("Atlanta's", "np$"), words[10]);
        Assert.Equal(new TaggedWord("``", "``"), words[15]);
    }

    [Fact]
    public void Words_with_slashes_split_at_the_last_slash()
    {
        var words = SharedBrown.Corpus.Documents.SelectMany(d => d.Sentences).SelectMany(s => s.Words);
        Assert.Contains(new TaggedWord("1-1/2", "cd"), words);
    }

    [Fact]
    public void Shipped_file_is_the_one_the_manifest_describes()
    {
        var path = BrownCorpus.DefaultPath();
        // LoadDefault must find the copy the build placed next to the assembly, not the checkout's.
        Assert.StartsWith(Path.Combine(AppContext.BaseDirectory, "data", "brown"), path);
        Assert.Equal(Manifest.FileSha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));
        Assert.Equal($"{Manifest.Source.Name}@{Manifest.Source.Version}", SharedBrown.Corpus.Source);
    }

    [Fact]
    public void Truncated_file_names_file_and_problem()
    {
        var lines = ReadLines().Take(200).ToList(); // cut inside ca02, at a line boundary, so gzip itself is intact
        var path = WriteCorpus("truncated", lines);
        var e = Assert.Throws<CorpusFormatException>(() => BrownCorpus.Load(path));
        Assert.Equal(path, e.File);
        Assert.Contains("truncated", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Bad_token_names_file_line_and_token()
    {
        var lines = ReadLines().Take(10).ToList();
        lines[5] = "S\tThe/at jury-without-tag said/vbd";
        var path = WriteCorpus("badtoken", lines);
        var e = Assert.Throws<CorpusFormatException>(() => BrownCorpus.Load(path));
        Assert.Equal(6, e.Line);
        Assert.Contains("token 2 'jury-without-tag' is not word/TAG", e.Message);
        Assert.StartsWith($"{path}:6:", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Wrong_sentence_count_is_reported_at_the_next_document()
    {
        var lines = ReadLines().ToList();
        lines.RemoveAt(3); // one sentence of ca01 gone
        var path = WriteCorpus("missing", lines);
        var e = Assert.Throws<CorpusFormatException>(() => BrownCorpus.Load(path));
        Assert.Contains("document ca01 declares 98 sentences but has 97", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Corrupt_gzip_bytes_give_a_corpus_error_not_a_stream_error()
    {
        var bytes = File.ReadAllBytes(BrownCorpus.DefaultPath());
        var path = Path.Combine(Path.GetTempPath(), $"brown-corrupt-{Environment.ProcessId}.gz");
        File.WriteAllBytes(path, bytes.AsSpan(0, 4000).ToArray().Concat(Enumerable.Repeat((byte)0x5a, 4000)).ToArray());
        var e = Assert.Throws<CorpusFormatException>(() => BrownCorpus.Load(path));
        Assert.Contains(path, e.Message);
        File.Delete(path);
    }

    private static IEnumerable<string> ReadLines()
    {
        using var gzip = new GZipStream(File.OpenRead(BrownCorpus.DefaultPath()), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        while (reader.ReadLine() is { } line) yield return line;
    }

    private static string WriteCorpus(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(Path.GetTempPath(), $"brown-{name}-{Environment.ProcessId}.tsv.gz");
        using var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        gzip.Write(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        return path;
    }
}
