using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistTrain.Models.Interop;

/// <summary>
/// The safetensors file format, float32 only: 8-byte little-endian header length, a JSON header
/// (name → dtype, shape, data_offsets relative to the data block), then the raw little-endian data.
/// </summary>
/// <remarks>
/// Written here rather than through PyBridge so the key order, the metadata and the refusal of other dtypes are ours,
/// and so sharded checkpoints (several files plus an index) read through one function.
/// </remarks>
public static class Safetensors
{
    /// <summary>Reads every tensor of one file into CPU float32 tensors; any other dtype is an error naming the tensor.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new InvalidDataException($"{path}: too short for a safetensors file.");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        if (headerLength <= 0 || 8 + headerLength > bytes.Length) throw new InvalidDataException($"{path}: bad header length {headerLength}.");
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength))!.AsObject();
        long dataStart = 8 + headerLength;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            var dtype = (string)node!["dtype"]!;
            if (dtype != "F32")
                throw new InvalidDataException($"{path}: tensor '{name}' has dtype {dtype}; only F32 checkpoints are supported (convert with torch first).");
            var shape = node["shape"]!.AsArray().Select(d => (long)d!).ToArray();
            var offsets = node["data_offsets"]!.AsArray().Select(d => (long)d!).ToArray();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (offsets[1] - offsets[0] != 4 * count || dataStart + offsets[1] > bytes.Length)
                throw new InvalidDataException($"{path}: tensor '{name}' offsets [{offsets[0]}, {offsets[1]}] do not fit shape ({string.Join(", ", shape)}).");
            var values = MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)(dataStart + offsets[0]), (int)(4 * count))).ToArray();
            tensors[name] = tensor(values, shape);
        }
        return tensors;
    }

    /// <summary>Writes tensors in the given order as F32, with optional string metadata; the header is padded to 8 bytes.</summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is not null) header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            using var cpu = t.detach().to(ScalarType.Float32, CPU).contiguous();
            var blob = cpu.bytes.ToArray();
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + blob.Length),
            };
            blobs.Add(blob);
            offset += blob.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        int padded = (json.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(length, padded);
        file.Write(length);
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        foreach (var blob in blobs) file.Write(blob);
    }

    /// <summary>The tensor names of a checkpoint directory (single file or shards), from the headers only.</summary>
    public static IReadOnlySet<string> Names(string dir)
    {
        var single = Path.Combine(dir, "model.safetensors");
        var index = Path.Combine(dir, "model.safetensors.index.json");
        if (!File.Exists(single))
            return File.Exists(index) && JsonNode.Parse(File.ReadAllText(index))!["weight_map"] is JsonObject map
                ? map.Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal)
                : throw new FileNotFoundException($"{dir}: neither model.safetensors nor model.safetensors.index.json is there.");
        using var file = File.OpenRead(single);
        Span<byte> length = stackalloc byte[8];
        file.ReadExactly(length);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(length);
        if (headerLength <= 0 || 8 + headerLength > file.Length) throw new InvalidDataException($"{single}: bad header length {headerLength}.");
        var header = new byte[headerLength];
        file.ReadExactly(header);
        return JsonNode.Parse(header)!.AsObject().Select(kv => kv.Key).Where(k => k != "__metadata__").ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Reads a checkpoint directory: model.safetensors, or the shards named by model.safetensors.index.json's weight_map.
    /// </summary>
    public static Dictionary<string, Tensor> ReadDirectory(string dir)
    {
        var single = Path.Combine(dir, "model.safetensors");
        if (File.Exists(single)) return Read(single);
        var index = Path.Combine(dir, "model.safetensors.index.json");
        if (!File.Exists(index))
            throw new FileNotFoundException($"{dir}: neither model.safetensors nor model.safetensors.index.json is there.");
        var map = JsonNode.Parse(File.ReadAllText(index))!["weight_map"]?.AsObject()
            ?? throw new InvalidDataException($"{index}: no weight_map.");
        var all = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var shard in map.Select(kv => (string)kv.Value!).Distinct(StringComparer.Ordinal))
            foreach (var (name, t) in Read(Path.Combine(dir, shard))) all[name] = t;
        var missing = map.Select(kv => kv.Key).Where(k => !all.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{index}: tensors named in weight_map but absent from their shards: {string.Join(", ", missing)}.");
        return all;
    }
}
