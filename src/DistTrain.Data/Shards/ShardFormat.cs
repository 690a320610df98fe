using System.Security.Cryptography;
using DistTrain.Data.Files;
using DistTrain.Data.Splits;

namespace DistTrain.Data.Shards;

/// <summary>How a shard column stores its values: little-endian, fixed width.</summary>
public enum ShardDType
{
    /// <summary>Token ids of a tokenizer with at most 65,536 ids.</summary>
    UInt16,

    /// <summary>Token ids of a larger tokenizer.</summary>
    UInt32,

    /// <summary>Labels, tag ids, word starts (−1 marks a held-out label unseen in training).</summary>
    Int32,
}

/// <summary>One column of a prepared split: <c>&lt;name&gt;.bin</c> (values) and <c>&lt;name&gt;.idx</c> (int64 row offsets, Count + 1).</summary>
/// <param name="IsTokens">True for token-id columns (counted in TokenCount).</param>
public sealed record ShardColumn(string Name, ShardDType DType, bool IsTokens);

/// <summary>The on-disk layout of prepared data (format name, version, columns per schema).</summary>
/// <remarks>
/// A prepared dataset is a folder: <c>manifest.json</c> and one folder per split (train, validation, test), each with
/// a .bin and a .idx per column. Row r of a column is values [idx[r], idx[r+1]) of its .bin. Columns per schema:
/// text → <c>text</c>; classification → <c>text</c>, <c>label</c> (one int32: the label's index in the training
/// label set, −1 if unseen there); token_tags → <c>ids</c> (words encoded one by one, each after the first with a
/// leading space), <c>word_starts</c> (index in ids of each word's first token), <c>tags</c> (tag ids, −1 unseen);
/// sft → <c>prompt</c>, <c>response</c>; preference → <c>prompt</c>, <c>chosen</c>, <c>rejected</c>.
/// </remarks>
public static class ShardFormat
{
    /// <summary>The format name in every manifest.</summary>
    public const string Name = "disttrain-shards";

    /// <summary>The layout version; part of the cache key, so a new layout never reads an old folder.</summary>
    public const int Version = 1;

    /// <summary>The manifest's file name in a prepared folder.</summary>
    public const string ManifestFile = "manifest.json";

    /// <summary>uint16 when every id fits (Size ≤ 65,536), else uint32.</summary>
    public static ShardDType TokenDType(int tokenizerSize) => tokenizerSize <= 65536 ? ShardDType.UInt16 : ShardDType.UInt32;

    /// <summary>Bytes per value.</summary>
    public static int Width(ShardDType dtype) => dtype == ShardDType.UInt16 ? 2 : 4;

    /// <summary>"uint16", "uint32", "int32".</summary>
    public static string DTypeName(ShardDType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>The dtype named <paramref name="name"/> ("uint16", "uint32", "int32").</summary>
    public static ShardDType ParseDType(string name) => name switch
    {
        "uint16" => ShardDType.UInt16,
        "uint32" => ShardDType.UInt32,
        "int32" => ShardDType.Int32,
        _ => throw new InvalidDataException($"unknown dtype '{name}'"),
    };

    /// <summary>The columns a schema's records become.</summary>
    public static IReadOnlyList<ShardColumn> Columns(DataSchema schema, int tokenizerSize)
    {
        var t = TokenDType(tokenizerSize);
        return schema switch
        {
            DataSchema.Text => [new("text", t, true)],
            DataSchema.Classification => [new("text", t, true), new("label", ShardDType.Int32, false)],
            DataSchema.TokenTags => [new("ids", t, true), new("word_starts", ShardDType.Int32, false), new("tags", ShardDType.Int32, false)],
            DataSchema.Sft => [new("prompt", t, true), new("response", t, true)],
            DataSchema.Preference => [new("prompt", t, true), new("chosen", t, true), new("rejected", t, true)],
            _ => throw new ArgumentOutOfRangeException(nameof(schema)),
        };
    }

    /// <summary>A split's folder name: "train", "validation", "test".</summary>
    public static string SplitFolder(SplitName split) => split.ToString().ToLowerInvariant();

    internal static string Sha256(string path, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
