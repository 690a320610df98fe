using DistTrain.Contracts;
using DistTrain.Data;

namespace DistTrain.Api.Tests.Support;

/// <summary>Job specs the API tests send: the repository's examples to derive bad ones from (the tiny valid one is TestSpecs.TinyGpt).</summary>
public static class Specs
{
    /// <summary>An example spec of the repository (examples/), as a user would submit it.</summary>
    public static string Example(string file) => File.ReadAllText(ShippedFiles.Find($"examples/{file}"));

    /// <summary>The text with <paramref name="from"/> replaced once; fails loudly if the example changed under the test.</summary>
    public static string With(this string text, string from, string to)
    {
        int i = text.IndexOf(from, StringComparison.Ordinal);
        if (i < 0) throw new ArgumentException($"'{from}' not found in the spec; the example changed");
        return text[..i] + to + text[(i + from.Length)..];
    }

    /// <summary>
    /// <paramref name="spec"/> padded with a YAML comment of <paramref name="fill"/> to exactly <paramref name="bytes"/>
    /// UTF-8 bytes. A quote or backslash is the worst case on the cluster's wire (JSON escapes it to two bytes).
    /// </summary>
    public static string PaddedTo(this string spec, int bytes, char fill = '"')
    {
        string head = spec.TrimEnd('\n') + "\n# ";
        int pad = bytes - System.Text.Encoding.UTF8.GetByteCount(head) - 1;
        return head + new string(fill, pad) + "\n";
    }
}
