using System.Text;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests;

/// <summary>A fresh folder under the system temp folder, deleted with everything in it on Dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "disttrain-data-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Writes <paramref name="text"/> to <paramref name="relative"/> (folders created) and returns the full path.</summary>
    public string Write(string relative, string text)
    {
        var full = File(relative);
        System.IO.File.WriteAllText(full, text, new UTF8Encoding(false));
        return full;
    }

    /// <summary>The full path of <paramref name="relative"/>, its folder created.</summary>
    public string File(string relative)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        return full;
    }

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}

/// <summary>A hand-checkable tokenizer for shard tests: one id per UTF-16 unit, id = <see cref="SpecialTokens.Count"/> + code (tests keep codes below Size − 38).</summary>
public sealed class CharTokenizer(int size = 65536) : ITextTokenizer
{
    public string Kind => "chars";
    public string Identity => $"chars:{size}";
    public int Size => size;

    public int[] Encode(string text) => text.Select(c => SpecialTokens.Count + c).ToArray();

    public string Decode(IEnumerable<int> ids, bool skipSpecials = false) =>
        string.Concat(ids.Where(id => !(skipSpecials && SpecialTokens.IsSpecial(id)))
                         .Select(id => SpecialTokens.IsSpecial(id) ? SpecialTokens.Names[id] : ((char)(id - SpecialTokens.Count)).ToString()));

    public void Save(string directory) => throw new NotSupportedException();
}
