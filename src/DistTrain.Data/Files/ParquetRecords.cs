using Parquet;
using Parquet.Schema;

namespace DistTrain.Data.Files;

/// <summary>The Parquet part of <see cref="RecordReader"/>: columns checked up front, then one row group at a time.</summary>
/// <remarks>
/// Parquet.Net 6 reads a column of a row group into flat arrays: the defined values packed, plus definition levels
/// (which entries are not null) and repetition levels (0 starts a new row of a list column). Strings come as
/// ReadOnlyMemory&lt;char&gt;, integers in their stored width.
/// </remarks>
internal static class ParquetRecords
{
    public static IEnumerable<DataRecord> Read(string file, string display, IReadOnlyList<SchemaField> fields,
                                                       IReadOnlyDictionary<string, string>? fieldMap)
    {
        using var stream = File.OpenRead(file);
        ParquetReader reader;
        try { reader = Sync(ParquetReader.CreateAsync(stream, leaveStreamOpen: true)); }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new DataFormatException($"{display}: not a readable Parquet file ({e.Message})", e);
        }
        try
        {
            var columns = fields.Select(f => ParquetColumn(reader.Schema, f, DataSchemas.Column(f.Name, fieldMap), display)).ToArray();
            long row = 0;
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var rows = checked((int)group.RowCount);
                var data = columns.Select(c => Sync(ReadColumn(group, c, rows))).ToArray();
                for (var r = 0; r < rows; r++)
                {
                    row++;
                    var where = $"{display}:row {row}";
                    var values = new Dictionary<string, object>(fields.Count);
                    for (var c = 0; c < fields.Count; c++)
                    {
                        var value = data[c][r];
                        if (value is null)
                        {
                            if (fields[c].Optional) { values[fields[c].Name] = ""; continue; }
                            throw new DataFormatException($"{where}: field '{columns[c].Column}' is null");
                        }
                        values[fields[c].Name] = value;
                    }
                    yield return RecordReader.Checked(new DataRecord(where, values), fields, fieldMap);
                }
            }
        }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private sealed record ParquetField(string Column, DataField Data, SchemaField Field);

    private static ParquetField ParquetColumn(ParquetSchema schema, SchemaField field, string column, string display)
    {
        var top = schema.Fields.FirstOrDefault(f => f.Name == column);
        if (top is null)
        {
            if (field.Optional) return new ParquetField(column, null!, field);
            throw new DataFormatException($"{display}: column '{column}' missing; found: {string.Join(", ", schema.Fields.Select(f => f.Name))}");
        }
        var (data, isList) = top switch
        {
            ListField { Item: DataField item } => (item, true),
            DataField d => (d, d.IsArray),
            _ => (null, false),
        };
        var type = data?.ClrType;
        var isString = type == typeof(ReadOnlyMemory<char>);
        var ok = field.Kind switch
        {
            FieldKind.Text => data is not null && !isList && isString,
            FieldKind.Label => data is not null && !isList && (isString || IntegerTypes.Contains(type!)),
            _ => data is not null && isList && isString,
        };
        if (!ok)
        {
            var what = data is null ? top.SchemaType.ToString().ToLowerInvariant() : isList ? $"a list of {TypeName(type!)}" : TypeName(type!);
            var must = field.Kind switch { FieldKind.Text => "a string column", FieldKind.Label => "a string or integer column", _ => "a list of strings" };
            throw new DataFormatException($"{display}: column '{column}' is {what}; it must be {must}");
        }
        return new ParquetField(column, data!, field);
    }

    private static readonly Type[] IntegerTypes = [typeof(int), typeof(long), typeof(short), typeof(sbyte), typeof(byte), typeof(ushort), typeof(uint)];

    private static string TypeName(Type t) => t == typeof(ReadOnlyMemory<char>) ? "string" : t.Name;

    // One value per row: string, long, string[], or null (a null value, or a missing optional column).
    private static async Task<object?[]> ReadColumn(ParquetRowGroupReader group, ParquetField column, int rows)
    {
        if (column.Data is null) return new object?[rows];
        var t = column.Data.ClrType;
        if (t == typeof(ReadOnlyMemory<char>)) return await ReadRaw<ReadOnlyMemory<char>>(group, column.Data, rows, v => v.ToString());
        if (t == typeof(int)) return await ReadRaw<int>(group, column.Data, rows, v => (long)v);
        if (t == typeof(long)) return await ReadRaw<long>(group, column.Data, rows, v => v);
        if (t == typeof(short)) return await ReadRaw<short>(group, column.Data, rows, v => (long)v);
        if (t == typeof(sbyte)) return await ReadRaw<sbyte>(group, column.Data, rows, v => (long)v);
        if (t == typeof(byte)) return await ReadRaw<byte>(group, column.Data, rows, v => (long)v);
        if (t == typeof(ushort)) return await ReadRaw<ushort>(group, column.Data, rows, v => (long)v);
        return await ReadRaw<uint>(group, column.Data, rows, v => (long)v);
    }

    // Raw values come packed (nulls left out); definition levels say which entries are defined, and repetition
    // level 0 starts a new row of a list column.
    private static async Task<object?[]> ReadRaw<T>(ParquetRowGroupReader group, DataField field, int rows, Func<T, object> convert)
        where T : struct
    {
        var entries = checked((int)(group.GetMetadata(field)?.MetaData?.NumValues ?? rows));
        var values = new T[entries];
        // Parquet.Net wants both level buffers whatever the column's maximum levels.
        var defLevels = new int[entries];
        var repLevels = new int[entries];
        await group.ReadRawAsync<T>(field, values, defLevels, repLevels);
        int[]? def = field.MaxDefinitionLevel > 0 ? defLevels : null;
        int[]? rep = field.MaxRepetitionLevel > 0 ? repLevels : null;
        var result = new object?[rows];
        int k = 0, row = -1;
        if (rep is null)
        {
            for (var i = 0; i < entries && i < rows; i++)
                result[i] = def is null || def[i] == field.MaxDefinitionLevel ? convert(values[k++]) : null;
            return result;
        }
        var words = new List<string>();
        for (var i = 0; i < entries; i++)
        {
            if (rep[i] == 0)
            {
                if (row >= 0) result[row] = words.ToArray();
                row++;
                words.Clear();
            }
            if (def is null || def[i] == field.MaxDefinitionLevel) words.Add((string)convert(values[k++]));
        }
        if (row >= 0) result[row] = words.ToArray();
        for (var r = row + 1; r < rows; r++) result[r] = Array.Empty<string>();
        return result;
    }

    private static T Sync<T>(ValueTask<T> task) => task.AsTask().GetAwaiter().GetResult();
    private static T Sync<T>(Task<T> task) => task.GetAwaiter().GetResult();
}
