using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Checkpointing;

/// <summary>Raised when a checkpoint is missing, incomplete or corrupt; says which file and why.</summary>
public sealed class CheckpointException(string message) : Exception(message);

/// <summary>
/// Checkpoints as directories <c>step-000123/</c> holding model.bin, optimizer.bin and state.json, with a
/// manifest of SHA-256 digests written last. A directory is published by an atomic rename, so a crash never
/// leaves a half-written checkpoint that looks complete, and a corrupt file is named on load.
/// Nothing here depends on the world size: a checkpoint saved by N ranks loads into any number of ranks.
/// </summary>
public sealed class CheckpointStore(string root)
{
    private const string Manifest = "manifest.json";
    private static readonly string[] Files = ["model.bin", "optimizer.bin", "state.json"];
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string Root { get; } = Path.GetFullPath(root);

    public string Save(nn.Module model, OptimizerHelper optimizer, TrainingState state)
    {
        Directory.CreateDirectory(Root);
        string final = Path.Combine(Root, $"step-{state.Step:D6}");
        string tmp = final + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);

        model.save(Path.Combine(tmp, "model.bin"));
        using (var w = new BinaryWriter(File.Create(Path.Combine(tmp, "optimizer.bin"))))
            optimizer.save_state_dict(w);
        File.WriteAllText(Path.Combine(tmp, "state.json"), JsonSerializer.Serialize(state, Json));
        var digests = Files.ToDictionary(f => f, f => Digest(Path.Combine(tmp, f)));
        File.WriteAllText(Path.Combine(tmp, Manifest), JsonSerializer.Serialize(digests, Json));

        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(tmp, final);
        return final;
    }

    /// <summary>The newest complete checkpoint, or null. Incomplete (.tmp) directories are ignored.</summary>
    public string? Latest()
    {
        if (!Directory.Exists(Root)) return null;
        return Directory.GetDirectories(Root, "step-*")
            .Where(d => !Path.GetFileName(d).Contains(".tmp") && File.Exists(Path.Combine(d, Manifest)))
            .OrderBy(d => d, StringComparer.Ordinal)
            .LastOrDefault();
    }

    /// <summary>Verifies every digest, then loads tensors into <paramref name="model"/> and <paramref name="optimizer"/> (optional).</summary>
    public static TrainingState Load(string dir, nn.Module model, OptimizerHelper? optimizer)
    {
        Verify(dir);
        model.load(Path.Combine(dir, "model.bin"));
        if (optimizer is not null)
            using (var r = new BinaryReader(File.OpenRead(Path.Combine(dir, "optimizer.bin"))))
                optimizer.load_state_dict(r);
        return State(dir);
    }

    /// <summary>The state of a checkpoint, after verifying every digest.</summary>
    public static TrainingState ReadState(string dir)
    {
        Verify(dir);
        return State(dir);
    }

    // Callers verify first: hashing a model's bytes twice per load is work done for nothing.
    private static TrainingState State(string dir) =>
        JsonSerializer.Deserialize<TrainingState>(File.ReadAllText(Path.Combine(dir, "state.json")))
               ?? throw new CheckpointException($"{dir}/state.json: empty");

    public static void Verify(string dir)
    {
        string manifest = Path.Combine(dir, Manifest);
        if (!File.Exists(manifest)) throw new CheckpointException($"{dir}: no {Manifest}; the checkpoint is incomplete");
        Dictionary<string, string>? digests;
        try { digests = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(manifest)); }
        catch (JsonException e) { throw new CheckpointException($"{manifest}: unreadable ({e.Message})"); }
        foreach (var f in Files)
        {
            string path = Path.Combine(dir, f);
            if (digests is null || !digests.TryGetValue(f, out var want)) throw new CheckpointException($"{manifest}: no digest for {f}");
            if (!File.Exists(path)) throw new CheckpointException($"{path}: missing");
            if (Digest(path) != want) throw new CheckpointException($"{path}: SHA-256 mismatch; the file is corrupt");
        }
    }

    private static string Digest(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s));
    }
}
