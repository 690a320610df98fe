using System.IO.Compression;
using System.Text;
using DistTrain.Data.Files;
using Parquet;
using Parquet.Schema;

namespace DistTrain.Data.Tests.Files;

public sealed class RecordReaderTests
{
    private static List<DataRecord> Read(TempFolder tmp, string relative, DataSchema schema, IReadOnlyDictionary<string, string>? map = null) =>
        RecordReader.Read(tmp.File(relative), schema, map, tmp.Path).ToList();

    private static string Error(TempFolder tmp, string relative, DataSchema schema, IReadOnlyDictionary<string, string>? map = null) =>
        Assert.Throws<DataFormatException>(() => Read(tmp, relative, schema, map)).Message;

    [Fact]
    public void Txt_documents_are_separated_by_blank_lines()
    {
        using var tmp = new TempFolder();
        tmp.Write("a.txt", "First line\nsecond line\n\n\n  \nSecond doc\n\nThird\n");
        var docs = Read(tmp, "a.txt", DataSchema.Text);
        Assert.Equal(["First line\nsecond line", "Second doc", "Third"], docs.Select(d => d.Text("text")));
        Assert.Equal(["a.txt:1", "a.txt:6", "a.txt:8"], docs.Select(d => d.Source));
        tmp.Write("one.txt", "no blank line\nanywhere");
        Assert.Equal("no blank line\nanywhere", Assert.Single(Read(tmp, "one.txt", DataSchema.Text)).Text("text"));
    }

    [Fact]
    public void A_huge_txt_document_is_cut_at_line_boundaries()
    {
        using var tmp = new TempFolder();
        var line = new string('x', 999);
        using (var writer = new StreamWriter(tmp.File("big.txt")))
            for (var i = 0; i < 20_000; i++) writer.WriteLine(line); // 20M characters, no blank line
        var docs = Read(tmp, "big.txt", DataSchema.Text);
        Assert.Equal(3, docs.Count);
        Assert.All(docs, d => Assert.True(d.Text("text").Length <= RecordReader.MaxTextChars));
        Assert.Equal(20_000 * 1000 - 3, docs.Sum(d => d.Text("text").Length)); // every line, joined by "\n" within a record
        Assert.Equal("big.txt:8389", docs[1].Source);
    }

    [Fact]
    public void Jsonl_and_jsonl_gz_read_fields_with_a_field_map()
    {
        using var tmp = new TempFolder();
        const string lines = "{\"body\": \"héllo\", \"category\": \"spam\", \"extra\": 1}\n\n{\"body\": \"x\", \"category\": 3}\n";
        tmp.Write("a.jsonl", lines);
        using (var gz = new GZipStream(File.Create(tmp.File("a.jsonl.gz")), CompressionLevel.Fastest))
            gz.Write(Encoding.UTF8.GetBytes(lines));
        var map = new Dictionary<string, string> { ["text"] = "body", ["label"] = "category" };
        foreach (var file in new[] { "a.jsonl", "a.jsonl.gz" })
        {
            var records = Read(tmp, file, DataSchema.Classification, map);
            Assert.Equal(["héllo", "x"], records.Select(r => r.Text("text")));
            Assert.Equal(["spam", "3"], records.Select(r => r.Label()));
            Assert.Equal(3L, records[1].Fields["label"]);
            Assert.Equal($"{file}:3", records[1].Source);
        }
    }

    [Fact]
    public void Json_files_hold_an_array_of_records_or_json_lines()
    {
        using var tmp = new TempFolder();
        tmp.Write("alpaca.json", """
            [
              {"instruction": "Name a colour.", "output": "Blue."},
              {"instruction": "Add 2 and 2.", "output": "4"}
            ]
            """);
        var map = new Dictionary<string, string> { ["prompt"] = "instruction", ["response"] = "output" };
        var records = Read(tmp, "alpaca.json", DataSchema.Sft, map);
        Assert.Equal(["Name a colour.", "Add 2 and 2."], records.Select(r => r.Text("prompt")));
        Assert.Equal("alpaca.json:item 2", records[1].Source);
        tmp.Write("lines.json", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
        Assert.Equal(["a", "b"], Read(tmp, "lines.json", DataSchema.Text).Select(r => r.Text("text")));
        tmp.Write("bad.json", "[{\"text\": \"a\"},\n {\"txt\": \"b\"}]");
        Assert.Equal("bad.json:item 2: missing field 'text' (expected text; found: txt)", Error(tmp, "bad.json", DataSchema.Text));
        tmp.Write("broken.json", "[{\"text\": \"a\"},\n {\"text\": ]");
        Assert.StartsWith("broken.json:2: not valid JSON (", Error(tmp, "broken.json", DataSchema.Text));
        tmp.Write("empty.json", "[]");
        Assert.Equal("empty.json: no records (the file is empty)", Error(tmp, "empty.json", DataSchema.Text));
    }

    [Fact]
    public void Every_schema_reads_its_fields()
    {
        using var tmp = new TempFolder();
        tmp.Write("t.jsonl", """{"tokens": ["The", "dog"], "tags": ["DT", "NN"]}""");
        tmp.Write("s.jsonl", """{"prompt": "Q?", "response": " A."}""");
        tmp.Write("p.jsonl", """{"chosen": "good", "rejected": "bad"}""" + "\n" + """{"prompt": "P", "chosen": "c", "rejected": "r"}""");
        var tags = Assert.Single(Read(tmp, "t.jsonl", DataSchema.TokenTags));
        Assert.Equal(["The", "dog"], tags.Words("tokens"));
        Assert.Equal(["DT", "NN"], tags.Words("tags"));
        Assert.Equal(" A.", Assert.Single(Read(tmp, "s.jsonl", DataSchema.Sft)).Text("response"));
        var pairs = Read(tmp, "p.jsonl", DataSchema.Preference);
        Assert.Equal(["", "P"], pairs.Select(p => p.Text("prompt"))); // the prompt is optional
    }

    [Fact]
    public async Task Parquet_streams_rows_of_string_integer_and_list_columns()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("d.parquet");
        await WriteParquet(path, new DataField<string>("text"), new DataField<long>("label"), ["a", "b", "c"], [10L, 2L, 10L]);
        var records = Read(tmp, "d.parquet", DataSchema.Classification);
        Assert.Equal(["a", "b", "c"], records.Select(r => r.Text("text")));
        Assert.Equal(["10", "2", "10"], records.Select(r => r.Label()));
        Assert.Equal("d.parquet:row 2", records[1].Source);

        var tagsPath = tmp.File("tags.parquet");
        var tokens = new DataField("tokens", typeof(string), false, true);
        var tagField = new DataField("tags", typeof(string), false, true);
        var schema = new ParquetSchema(tokens, tagField);
        using (var fs = File.Create(tagsPath))
        {
            await using var writer = await ParquetWriter.CreateAsync(schema, fs);
            using var group = writer.CreateRowGroup();
            // Rows ["The", "dog"] and ["Hi"]: repetition level 0 starts a row.
            await group.WriteAsync(tokens, new[] { "The", "dog", "Hi" }, new int[] { 0, 1, 0 });
            await group.WriteAsync(tagField, new[] { "DT", "NN", "UH" }, new int[] { 0, 1, 0 });
        }
        var tagged = Read(tmp, "tags.parquet", DataSchema.TokenTags);
        Assert.Equal(2, tagged.Count);
        Assert.Equal(["The", "dog"], tagged[0].Words("tokens"));
        Assert.Equal(["UH"], tagged[1].Words("tags"));
    }

    [Fact]
    public void Bad_jsonl_errors_name_file_line_and_fault()
    {
        using var tmp = new TempFolder();
        tmp.Write("bad.jsonl", "{\"text\": \"ok\", \"label\": \"a\"}\n{\"text\": \"broken\n");
        Assert.StartsWith("bad.jsonl:2: not a JSON object (", Error(tmp, "bad.jsonl", DataSchema.Classification));
        tmp.Write("array.jsonl", "[1, 2]\n");
        Assert.Equal("array.jsonl:1: not a JSON object (found an array)", Error(tmp, "array.jsonl", DataSchema.Text));
        tmp.Write("missing.jsonl", "\n{\"body\": \"x\", \"category\": \"y\"}\n");
        Assert.Equal("missing.jsonl:2: missing field 'text' (expected text, label; found: body, category)", Error(tmp, "missing.jsonl", DataSchema.Classification));
        Assert.Equal("missing.jsonl:2: missing field 'label' (expected body, label; found: body, category)",
            Error(tmp, "missing.jsonl", DataSchema.Classification, new Dictionary<string, string> { ["text"] = "body" }));
        tmp.Write("type.jsonl", "{\"text\": \"x\", \"label\": [1]}\n");
        Assert.Equal("type.jsonl:1: field 'label' must be a string or an integer, not an array", Error(tmp, "type.jsonl", DataSchema.Classification));
        tmp.Write("float.jsonl", "{\"text\": \"x\", \"label\": 1.5}\n");
        Assert.Equal("float.jsonl:1: field 'label' must be a string or an integer, not the number 1.5", Error(tmp, "float.jsonl", DataSchema.Classification));
        tmp.Write("text.jsonl", "{\"text\": 5}\n");
        Assert.Equal("text.jsonl:1: field 'text' must be a string, not a number", Error(tmp, "text.jsonl", DataSchema.Text));
        tmp.Write("null.jsonl", "{\"text\": null}\n");
        Assert.Equal("null.jsonl:1: field 'text' is null", Error(tmp, "null.jsonl", DataSchema.Text));
        tmp.Write("len.jsonl", "{\"tokens\": [\"a\", \"b\"], \"tags\": [\"X\"]}\n");
        Assert.Equal("len.jsonl:1: 'tokens' has 2 items but 'tags' has 1; they must be the same length", Error(tmp, "len.jsonl", DataSchema.TokenTags));
        tmp.Write("item.jsonl", "{\"tokens\": [\"a\", 2], \"tags\": [\"X\", \"Y\"]}\n");
        Assert.Equal("item.jsonl:1: field 'tokens' item 2 must be a string, not a number", Error(tmp, "item.jsonl", DataSchema.TokenTags));
    }

    [Fact]
    public void Empty_files_wrong_formats_and_missing_files_are_errors()
    {
        using var tmp = new TempFolder();
        tmp.Write("empty.jsonl", "\n\n");
        Assert.Equal("empty.jsonl: no records (the file is empty)", Error(tmp, "empty.jsonl", DataSchema.Text));
        tmp.Write("empty.txt", "");
        Assert.Equal("empty.txt: no records (the file is empty)", Error(tmp, "empty.txt", DataSchema.Text));
        tmp.Write("a.txt", "text");
        Assert.Equal("a.txt: a .txt file holds plain text only (schema text), not classification; use .jsonl, .json or .parquet for fields",
            Error(tmp, "a.txt", DataSchema.Classification));
        Assert.Equal("gone.jsonl: file not found", Error(tmp, "gone.jsonl", DataSchema.Text));
        tmp.Write("x.csv", "a");
        Assert.StartsWith("x.csv: unsupported file type '.csv'; supported: .txt, .jsonl", Error(tmp, "x.csv", DataSchema.Text));
        tmp.Write("notgz.jsonl.gz", "plain text");
        Assert.StartsWith("notgz.jsonl.gz:1: not gzip data", Error(tmp, "notgz.jsonl.gz", DataSchema.Text));
        tmp.Write("fake.parquet", "not parquet at all");
        Assert.StartsWith("fake.parquet: not a readable Parquet file", Error(tmp, "fake.parquet", DataSchema.Text));
    }

    [Fact]
    public async Task Parquet_column_errors_are_found_before_the_first_row()
    {
        using var tmp = new TempFolder();
        await WriteParquet(tmp.File("d.parquet"), new DataField<string>("body"), new DataField<double>("score"), ["a"], [0.5]);
        Assert.Equal("d.parquet: column 'text' missing; found: body, score", Error(tmp, "d.parquet", DataSchema.Text));
        Assert.Equal("d.parquet: column 'score' is Double; it must be a string or integer column",
            Error(tmp, "d.parquet", DataSchema.Classification, new Dictionary<string, string> { ["text"] = "body", ["label"] = "score" }));
        await WriteParquet(tmp.File("n.parquet"), new DataField<string>("text"), new DataField<long>("label"), ["a", null!], [1L, 2L]);
        Assert.Equal("n.parquet:row 2: field 'text' is null", Error(tmp, "n.parquet", DataSchema.Classification));
    }

    [Fact]
    public async Task Parquet_preference_files_may_leave_out_the_prompt_column()
    {
        using var tmp = new TempFolder();
        await WriteParquet(tmp.File("p.parquet"), new DataField<string>("chosen"), new DataField<int>("n"), ["good", "better"], [1, 2]);
        var e = Assert.Throws<DataFormatException>(() => Read(tmp, "p.parquet", DataSchema.Preference));
        Assert.Equal("p.parquet: column 'rejected' missing; found: chosen, n", e.Message);
        var schema = new ParquetSchema(new DataField<string>("chosen"), new DataField<string>("rejected"));
        await using (var fs = File.Create(tmp.File("q.parquet")))
        await using (var writer = await ParquetWriter.CreateAsync(schema, fs))
        using (var group = writer.CreateRowGroup())
        {
            await group.WriteAsync(schema.DataFields[0], new[] { "good" });
            await group.WriteAsync(schema.DataFields[1], new[] { "bad" });
        }
        var pair = Assert.Single(Read(tmp, "q.parquet", DataSchema.Preference));
        Assert.Equal(("", "good", "bad"), (pair.Text("prompt"), pair.Text("chosen"), pair.Text("rejected")));
    }

    internal static async Task WriteParquet<T>(string path, DataField<string> first, DataField<T> second, string[] a, T[] b) where T : struct
    {
        var schema = new ParquetSchema(first, second);
        await using var fs = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, fs);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(first, a);
        await group.WriteAsync<T>(second, b.AsMemory());
    }
}
