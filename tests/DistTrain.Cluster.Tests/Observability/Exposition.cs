using System.Globalization;
using System.Text.RegularExpressions;
using Prometheus;

namespace DistTrain.Cluster.Tests.Observability;

/// <summary>One sample of the Prometheus text format.</summary>
public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>Reads the Prometheus text exposition format (what <c>/metrics</c> serves) into samples.</summary>
public static partial class Exposition
{
    public static async Task<IReadOnlyList<Sample>> ScrapeAsync(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    public static IReadOnlyList<Sample> Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            var labels = LabelPair().Matches(m.Groups["labels"].Value).ToDictionary(p => p.Groups[1].Value, p => p.Groups[2].Value);
            string v = m.Groups["value"].Value;
            double value = v switch { "NaN" => double.NaN, "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, _ => double.Parse(v, CultureInfo.InvariantCulture) };
            samples.Add(new Sample(m.Groups["name"].Value, labels, value));
        }
        return samples;
    }

    /// <summary>Samples of one metric whose labels include every given pair.</summary>
    public static IReadOnlyList<Sample> Find(this IEnumerable<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).ToList();

    /// <summary>The one sample of a metric with the given labels.</summary>
    public static double Single(this IEnumerable<Sample> samples, string name, params (string Key, string Value)[] labels)
    {
        var found = samples.Find(name, labels);
        Assert.True(found.Count == 1, $"{found.Count} samples of {name}{{{string.Join(",", labels.Select(l => $"{l.Key}={l.Value}"))}}}");
        return found[0].Value;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
