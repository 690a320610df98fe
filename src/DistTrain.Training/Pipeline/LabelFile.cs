using System.Security.Cryptography;
using System.Text.Json;

namespace DistTrain.Training.Pipeline;

/// <summary>What a label stage wrote: the task and split it labelled, the shape of the soft labels, and a digest.</summary>
public sealed record LabelHeader(string Format, string Task, string Split, int Examples, int K, int Classes, string Teacher, string Sha256);

/// <summary>One example's teacher output: its index in the labelled dataset, the gold label, and the top-k classes with probabilities.</summary>
public sealed record SoftLabel(int Index, int Gold, int[] Ids, float[] Probs);

/// <summary>
/// The teacher's top-k probabilities for every example of a corpus: <c>labels.bin</c> (fixed-size records)
/// with <c>labels.json</c> (header and SHA-256 of the records). Loading verifies the digest, so a student
/// never trains on a corrupt or truncated file.
/// </summary>
public static class LabelFile
{
    public const string Format = "disttrain-labels/1";
    public const string DataFile = "labels.bin";
    public const string HeaderFile = "labels.json";

    public static LabelHeader Write(string dir, string task, string split, int classes, string teacher, IReadOnlyList<SoftLabel> labels)
    {
        Directory.CreateDirectory(dir);
        int k = labels.Count > 0 ? labels[0].Ids.Length : 0;
        string tmp = Path.Combine(dir, DataFile + ".tmp");
        using (var w = new BinaryWriter(File.Create(tmp)))
            foreach (var l in labels.OrderBy(l => l.Index))
            {
                if (l.Ids.Length != k || l.Probs.Length != k) throw new ArgumentException($"example {l.Index}: expected top-{k}");
                w.Write(l.Index);
                w.Write(l.Gold);
                foreach (int id in l.Ids) w.Write(id);
                foreach (float p in l.Probs) w.Write(p);
            }
        File.Move(tmp, Path.Combine(dir, DataFile), overwrite: true);
        var header = new LabelHeader(Format, task, split, labels.Count, k, classes, teacher, Digest(Path.Combine(dir, DataFile)));
        File.WriteAllText(Path.Combine(dir, HeaderFile), JsonSerializer.Serialize(header, new JsonSerializerOptions { WriteIndented = true }));
        return header;
    }

    public static (LabelHeader Header, IReadOnlyList<SoftLabel> Labels) Read(string dir)
    {
        string headerPath = Path.Combine(dir, HeaderFile), dataPath = Path.Combine(dir, DataFile);
        if (!File.Exists(headerPath) || !File.Exists(dataPath))
            throw new InvalidDataException($"{dir}: no labels ({HeaderFile} and {DataFile} are written by a label stage)");
        LabelHeader header;
        try { header = JsonSerializer.Deserialize<LabelHeader>(File.ReadAllText(headerPath)) ?? throw new InvalidDataException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{headerPath}: unreadable ({e.Message})"); }
        if (header.Format != Format) throw new InvalidDataException($"{headerPath}: format '{header.Format}', expected '{Format}'");
        string digest = Digest(dataPath);
        if (digest != header.Sha256) throw new InvalidDataException($"{dataPath}: SHA-256 {digest[..12]}… does not match the header's {header.Sha256[..Math.Min(12, header.Sha256.Length)]}…; the file is corrupt");
        long recordBytes = 8 + 8L * header.K;
        if (new FileInfo(dataPath).Length != recordBytes * header.Examples)
            throw new InvalidDataException($"{dataPath}: {new FileInfo(dataPath).Length} bytes, expected {header.Examples} records of {recordBytes}");
        var labels = new List<SoftLabel>(header.Examples);
        using var r = new BinaryReader(File.OpenRead(dataPath));
        for (int i = 0; i < header.Examples; i++)
        {
            int index = r.ReadInt32(), gold = r.ReadInt32();
            var ids = new int[header.K];
            var probs = new float[header.K];
            for (int j = 0; j < header.K; j++) ids[j] = r.ReadInt32();
            for (int j = 0; j < header.K; j++) probs[j] = r.ReadSingle();
            labels.Add(new SoftLabel(index, gold, ids, probs));
        }
        return (header, labels);
    }

    private static string Digest(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s));
    }
}
