using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace DistTrain.Data.Files;

/// <summary>Streams the records of one data file in file order, checked against a <see cref="DataSchema"/>.</summary>
/// <remarks>
/// <para><b>.txt</b> holds text only (<see cref="DataSchema.Text"/>): documents are separated by one or more blank
/// (empty or whitespace-only) lines, and a file without a blank line is one document. A document's lines are joined
/// with "\n". A document longer than <see cref="MaxTextChars"/> (8M characters) is cut at a line boundary into several
/// records, so memory stays bounded even for a file with no blank line at all.</para>
/// <para><b>.jsonl</b> and <b>.jsonl.gz</b>: one JSON object per line; blank lines are skipped; extra fields are ignored.
/// <b>.json</b>: a JSON array of such objects (Alpaca style; streamed item by item, sources "file:item N"), or JSON
/// Lines when the file does not start with '[' (what HF datasets' to_json writes).</para>
/// <para><b>.parquet</b> (Parquet.Net): the columns are checked before the first row, then one row group at a time is
/// read, so memory holds one row group's columns. Text columns must be strings, labels strings or integers, words lists of strings.</para>
/// <para>Empty strings are valid values. A file with no records at all is an error. Every error is a
/// <see cref="DataFormatException"/> whose message starts with the path relative to the display root and the line or row.</para>
/// </remarks>
public static class RecordReader
{
    /// <summary>The longest .txt document (in UTF-16 characters) read as one record; longer ones are cut at a line boundary.</summary>
    public const int MaxTextChars = 8 << 20;

    /// <summary>The records of <paramref name="file"/>, read lazily in file order; the extension picks the format.</summary>
    /// <param name="fieldMap">Schema field → the column it is read from (e.g. text → "body"); null or a missing entry = the field's own name.</param>
    /// <param name="displayRoot">The folder paths in messages and sources are relative to.</param>
    public static IEnumerable<DataRecord> Read(string file, DataSchema schema, IReadOnlyDictionary<string, string>? fieldMap, string displayRoot)
    {
        var display = Path.GetRelativePath(displayRoot, file);
        var ext = DataFileResolver.ExtensionOf(file)
                  ?? throw new DataFormatException($"{display}: unsupported file type '{Path.GetExtension(file)}'; supported: {string.Join(", ", DataFileResolver.SupportedExtensions)}");
        if (!File.Exists(file)) throw new DataFormatException($"{display}: file not found");
        if (ext == ".txt" && schema != DataSchema.Text)
            throw new DataFormatException($"{display}: a .txt file holds plain text only (schema text), not {DataSchemas.Name(schema)}; use .jsonl, .json or .parquet for fields");
        var fields = DataSchemas.Fields(schema);
        return NonEmpty(ext switch
        {
            ".txt" => ReadText(file, display),
            ".parquet" => ParquetRecords.Read(file, display, fields, fieldMap),
            ".json" => ReadJson(file, display, fields, fieldMap),
            _ => ReadJsonLines(file, display, fields, fieldMap, gzip: ext == ".jsonl.gz"),
        }, display);
    }

    private static IEnumerable<DataRecord> NonEmpty(IEnumerable<DataRecord> records, string display)
    {
        var any = false;
        foreach (var r in records)
        {
            any = true;
            yield return r;
        }
        if (!any) throw new DataFormatException($"{display}: no records (the file is empty)");
    }

    private static IEnumerable<DataRecord> ReadText(string file, string display)
    {
        using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var doc = new StringBuilder();
        int lineNo = 0, first = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                if (doc.Length > 0 || first > 0) yield return TextRecord();
                continue;
            }
            // A document never grows past MaxTextChars: a file without blank lines (one sentence per line, say)
            // would otherwise be held whole in memory. It is cut at a line boundary into several records.
            if (first > 0 && doc.Length + 1 + line.Length > MaxTextChars) yield return TextRecord();
            if (first == 0) first = lineNo;
            else doc.Append('\n');
            doc.Append(line);
        }
        if (first > 0) yield return TextRecord();

        DataRecord TextRecord()
        {
            var record = new DataRecord($"{display}:{first}", new Dictionary<string, object> { ["text"] = doc.ToString() });
            doc.Clear();
            first = 0;
            return record;
        }
    }

    private static IEnumerable<DataRecord> ReadJsonLines(string file, string display, IReadOnlyList<SchemaField> fields,
                                                         IReadOnlyDictionary<string, string>? fieldMap, bool gzip)
    {
        using var stream = File.OpenRead(file);
        using var decompressed = gzip ? new GZipStream(stream, CompressionMode.Decompress) : (Stream)stream;
        using var reader = new StreamReader(decompressed, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var lineNo = 0;
        while (true)
        {
            string? line;
            try { line = reader.ReadLine(); }
            catch (InvalidDataException e) { throw new DataFormatException($"{display}:{lineNo + 1}: not gzip data or truncated ({e.Message})", e); }
            if (line is null) yield break;
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var where = $"{display}:{lineNo}";
            JsonDocument json;
            try { json = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new DataFormatException($"{where}: not a JSON object ({e.Message})", e); }
            using (json) yield return FromObject(json.RootElement, where, fields, fieldMap);
        }
    }

    // A .json file is either one JSON array of records (streamed element by element) or JSON Lines, as HF datasets'
    // to_json writes by default; the first character tells which.
    private static IEnumerable<DataRecord> ReadJson(string file, string display, IReadOnlyList<SchemaField> fields,
                                                    IReadOnlyDictionary<string, string>? fieldMap)
    {
        if (FirstCharacter(file) != '[') return ReadJsonLines(file, display, fields, fieldMap, gzip: false);
        return ReadJsonArray(file, display, fields, fieldMap);
    }

    private static IEnumerable<DataRecord> ReadJsonArray(string file, string display, IReadOnlyList<SchemaField> fields,
                                                         IReadOnlyDictionary<string, string>? fieldMap)
    {
        using var stream = File.OpenRead(file);
        var items = JsonSerializer.DeserializeAsyncEnumerable<JsonElement>(stream).GetAsyncEnumerator();
        try
        {
            for (var item = 1; ; item++)
            {
                bool more;
                try { more = items.MoveNextAsync().AsTask().GetAwaiter().GetResult(); }
                catch (JsonException e)
                {
                    throw new DataFormatException($"{display}:{(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})", e);
                }
                if (!more) yield break;
                yield return FromObject(items.Current, $"{display}:item {item}", fields, fieldMap);
            }
        }
        finally { items.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private static int FirstCharacter(string file)
    {
        using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int c;
        while ((c = reader.Read()) >= 0 && char.IsWhiteSpace((char)c)) { }
        return c;
    }

    private static DataRecord FromObject(JsonElement root, string where, IReadOnlyList<SchemaField> fields, IReadOnlyDictionary<string, string>? fieldMap)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new DataFormatException($"{where}: not a JSON object (found {Describe(root.ValueKind)})");
        var values = new Dictionary<string, object>(fields.Count);
        foreach (var field in fields)
        {
            var column = DataSchemas.Column(field.Name, fieldMap);
            if (!root.TryGetProperty(column, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                if (field.Optional) { values[field.Name] = ""; continue; }
                var found = root.EnumerateObject().Select(p => p.Name);
                throw Missing(where, column, fields, fieldMap, found, isNull: value.ValueKind == JsonValueKind.Null);
            }
            values[field.Name] = FromJson(value, field, column, where);
        }
        return Checked(new DataRecord(where, values), fields, fieldMap);
    }

    private static object FromJson(JsonElement value, SchemaField field, string column, string where)
    {
        switch (field.Kind)
        {
            case FieldKind.Text when value.ValueKind == JsonValueKind.String:
                return value.GetString()!;
            case FieldKind.Text:
                throw new DataFormatException($"{where}: field '{column}' must be a string, not {Describe(value.ValueKind)}");
            case FieldKind.Label when value.ValueKind == JsonValueKind.String:
                return value.GetString()!;
            case FieldKind.Label when value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n):
                return n;
            case FieldKind.Label:
                throw new DataFormatException($"{where}: field '{column}' must be a string or an integer, not {(value.ValueKind == JsonValueKind.Number ? $"the number {value.GetRawText()}" : Describe(value.ValueKind))}");
            case FieldKind.Words when value.ValueKind == JsonValueKind.Array:
                var words = new string[value.GetArrayLength()];
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                        throw new DataFormatException($"{where}: field '{column}' item {i + 1} must be a string, not {Describe(item.ValueKind)}");
                    words[i++] = item.GetString()!;
                }
                return words;
            default:
                throw new DataFormatException($"{where}: field '{column}' must be an array of strings, not {Describe(value.ValueKind)}");
        }
    }

    internal static DataRecord Checked(DataRecord record, IReadOnlyList<SchemaField> fields, IReadOnlyDictionary<string, string>? fieldMap)
    {
        if (fields is [{ Kind: FieldKind.Words } a, { Kind: FieldKind.Words } b])
        {
            int na = record.Words(a.Name).Length, nb = record.Words(b.Name).Length;
            if (na != nb)
                throw new DataFormatException($"{record.Source}: '{DataSchemas.Column(a.Name, fieldMap)}' has {na} items but '{DataSchemas.Column(b.Name, fieldMap)}' has {nb}; they must be the same length");
        }
        return record;
    }

    private static DataFormatException Missing(string where, string column, IReadOnlyList<SchemaField> fields,
                                               IReadOnlyDictionary<string, string>? fieldMap, IEnumerable<string> found, bool isNull)
    {
        var expected = string.Join(", ", fields.Select(f => DataSchemas.Column(f.Name, fieldMap) + (f.Optional ? " (optional)" : "")));
        return new DataFormatException(isNull
            ? $"{where}: field '{column}' is null"
            : $"{where}: missing field '{column}' (expected {expected}; found: {string.Join(", ", found)})");
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
