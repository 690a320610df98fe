using System.Text.Json;

namespace DistTrain.Execution;

/// <summary>The run's <c>report.json</c> (every stage's final metrics under <c>stages.&lt;name&gt;.metrics</c>) and stage metrics files.</summary>
public static class RunReport
{
    public static void Write(string runDirectory, string job, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> stages)
    {
        Directory.CreateDirectory(runDirectory);
        var document = new { job, stages = stages.ToDictionary(kv => kv.Key, kv => new { metrics = kv.Value }) };
        File.WriteAllText(Path.Combine(runDirectory, "report.json"), JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The <c>metrics</c> object of a stage's metrics.json.</summary>
    public static IReadOnlyDictionary<string, double> ReadStageMetrics(StageArtifacts artifacts)
    {
        if (!File.Exists(artifacts.Metrics)) throw new FileNotFoundException($"stage '{artifacts.Stage}' wrote no metrics", artifacts.Metrics);
        using var doc = JsonDocument.Parse(File.ReadAllText(artifacts.Metrics));
        return doc.RootElement.GetProperty("metrics").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
    }
}
