using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace DistTrain.Contracts.Specs;

/// <summary>A YAML value together with the path it was written at, so errors in merged defaults point at the default.</summary>
internal readonly record struct Entry(YamlNode Node, string Path);

/// <summary>Typed, path-reporting reads over YAML nodes; every problem becomes a <see cref="SpecError"/>, never an exception.</summary>
/// <remarks>
/// The parser walks the representation model by hand rather than deserialising into classes: that is what
/// lets it name the path of an unknown key or a wrong type, and keep going to report every one.
/// </remarks>
internal sealed class YamlSections
{
    public List<SpecError> Errors { get; } = [];

    public void Error(string path, string message) => Errors.Add(new SpecError(path.Length == 0 ? "$" : path, message));

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>Plain <c>~</c>, <c>null</c> or nothing: treated as if the key were absent.</summary>
    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s && s.Value is null or "" or "~" or "null";

    /// <summary>Reads a mapping, reporting keys outside <paramref name="keys"/>; null-valued keys are dropped.</summary>
    public Dictionary<string, Entry>? Map(Entry entry, IReadOnlyCollection<string> keys, string? what = null)
    {
        if (entry.Node is not YamlMappingNode mapping)
        {
            Error(entry.Path, $"must be a mapping, not {Describe(entry.Node)}");
            return null;
        }
        var section = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(entry.Path, "keys must be plain strings");
                continue;
            }
            string path = Join(entry.Path, key);
            if (!keys.Contains(key))
            {
                Error(Join(entry.Path, Shorten(key)), $"unknown key{(what is null ? "" : $" for {what}")}; expected one of {string.Join(", ", keys)}");
                continue;
            }
            if (!IsNull(value)) section[key] = new Entry(value, path);
        }
        return section;
    }

    /// <summary>Overlays <paramref name="own"/> on <paramref name="inherited"/>: a key the stage sets replaces the inherited value whole.</summary>
    public static Dictionary<string, Entry> Merge(IReadOnlyDictionary<string, Entry>? inherited, IReadOnlyDictionary<string, Entry>? own)
    {
        var merged = new Dictionary<string, Entry>(StringComparer.Ordinal);
        if (inherited is not null) foreach (var (k, v) in inherited) merged[k] = v;
        if (own is not null) foreach (var (k, v) in own) merged[k] = v;
        return merged;
    }

    public string? Str(IReadOnlyDictionary<string, Entry>? s, string key)
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        if (e.Node is YamlScalarNode { Value: { } v }) return v;
        Error(e.Path, $"must be a string, not {Describe(e.Node)}");
        return null;
    }

    public int? Int(IReadOnlyDictionary<string, Entry>? s, string key)
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        return Int(e);
    }

    public int? Int(Entry e)
    {
        if (e.Node is YamlScalarNode { Value: { } v } &&
            int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n))
            return n;
        Error(e.Path, $"must be an integer, not {Describe(e.Node)}");
        return null;
    }

    public double? Num(IReadOnlyDictionary<string, Entry>? s, string key)
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        if (e.Node is YamlScalarNode { Value: { } v } &&
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
            return d;
        Error(e.Path, $"must be a finite number, not {Describe(e.Node)}");
        return null;
    }

    public bool? Bool(IReadOnlyDictionary<string, Entry>? s, string key)
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        if (e.Node is YamlScalarNode { Value: "true" }) return true;
        if (e.Node is YamlScalarNode { Value: "false" }) return false;
        Error(e.Path, $"must be true or false, not {Describe(e.Node)}");
        return null;
    }

    public T? Enum<T>(IReadOnlyDictionary<string, Entry>? s, string key) where T : struct, System.Enum
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        return Enum<T>(e);
    }

    public T? Enum<T>(Entry e) where T : struct, System.Enum
    {
        if (e.Node is YamlScalarNode { Value: { } v } && SpecNames.TryParse<T>(v, out var value)) return value;
        Error(e.Path, $"must be one of {string.Join(", ", SpecNames.All<T>())}, not {Describe(e.Node)}");
        return null;
    }

    /// <summary>A sequence of items read by <paramref name="item"/>; failed items are reported and skipped.</summary>
    public List<T>? List<T>(IReadOnlyDictionary<string, Entry>? s, string key, Func<Entry, T?> item) where T : class =>
        Items<T>(s, key, e => item(e) is { } v ? [v] : []);

    /// <summary>As <see cref="List{T}"/>, for value types such as enums.</summary>
    public List<T>? Values<T>(IReadOnlyDictionary<string, Entry>? s, string key, Func<Entry, T?> item) where T : struct =>
        Items<T>(s, key, e => item(e) is { } v ? [v] : []);

    private List<T>? Items<T>(IReadOnlyDictionary<string, Entry>? s, string key, Func<Entry, T[]> item)
    {
        if (s is null || !s.TryGetValue(key, out var e)) return null;
        if (e.Node is not YamlSequenceNode seq)
        {
            Error(e.Path, $"must be a list, not {Describe(e.Node)}");
            return null;
        }
        var list = new List<T>();
        for (int i = 0; i < seq.Children.Count; i++)
        {
            list.AddRange(item(new Entry(seq.Children[i], $"{e.Path}[{i}]")));
        }
        return list;
    }

    public string? ScalarItem(Entry e)
    {
        if (e.Node is YamlScalarNode { Value: { } v } && !IsNull(e.Node)) return v;
        Error(e.Path, $"must be a string, not {Describe(e.Node)}");
        return null;
    }

    /// <summary>Short description of a node for messages; scalars are quoted and truncated so garbage cannot flood the report.</summary>
    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode { Value: var v } when v is null || IsNull(node) => "null",
        YamlScalarNode { Value: { } v } => $"'{Shorten(v)}'",
        _ => "an unsupported node",
    };

    /// <summary>Text the user wrote, as an error echoes it (a value or an unknown key): at most 40 characters.</summary>
    public static string Shorten(string text) => text.Length > 40 ? text[..(char.IsHighSurrogate(text[39]) ? 39 : 40)] + "…" : text;
}
