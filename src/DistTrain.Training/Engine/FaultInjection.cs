using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Engine;

/// <summary>
/// Deliberate faults for chaos tests, read from <c>DISTTRAIN_FAULTS</c> (unset in normal runs; see docs/configuration.md).
/// Faults are separated by <c>;</c>:
/// <list type="bullet">
/// <item><c>corrupt-parameter:rank=R:step=S</c> adds 1e-3 to the first parameter of rank R after step S: the silent
/// replica divergence the cross-rank checksum must catch.</item>
/// <item><c>straggle:rank=R:step=S:seconds=T</c> makes rank R stall T seconds after step S, as a slow or paused device
/// would; the other ranks wait in the next all-reduce.</item>
/// </list>
/// </summary>
public sealed record FaultInjection(IReadOnlyList<FaultInjection.Fault> Faults)
{
    public const string Variable = "DISTTRAIN_FAULTS";
    public static readonly FaultInjection None = new([]);

    /// <summary>One fault: what, on which rank, after which step.</summary>
    public sealed record Fault(string Kind, int Rank, int Step, double Seconds);

    /// <remarks>
    /// Read here, not by the node's NodeEnvironment: chaos tests set and clear it per test inside one running process
    /// (whose stage sessions must see the current value), and it is no setting a user configures.
    /// </remarks>
    public static FaultInjection FromEnvironment() => Parse(Environment.GetEnvironmentVariable(Variable));

    public static FaultInjection Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return None;
        var faults = new List<Fault>();
        foreach (var spec in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = spec.Split(':');
            var fields = parts.Skip(1).Select(p => p.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "");
            int Int(string key) => fields.TryGetValue(key, out var v) && int.TryParse(v, out int n) ? n
                : throw new ArgumentException($"{Variable}: '{spec}' needs {key}=<integer>");
            faults.Add(parts[0] switch
            {
                "corrupt-parameter" => new Fault(parts[0], Int("rank"), Int("step"), 0),
                "straggle" => new Fault(parts[0], Int("rank"), Int("step"), Int("seconds")),
                _ => throw new ArgumentException($"{Variable}: unknown fault '{parts[0]}' (corrupt-parameter, straggle)"),
            });
        }
        return new FaultInjection(faults);
    }

    /// <summary>Applies the faults due on this rank after this step.</summary>
    public void AfterStep(int rank, int step, nn.Module model)
    {
        foreach (var f in Faults.Where(f => f.Rank == rank && f.Step == step))
        {
            if (f.Kind == "corrupt-parameter")
            {
                using var _ = no_grad();
                using var nudge = 1e-3.ToScalar();
                Trainer.TrainableParameters(model)[0].add_(nudge, DistTrain.Models.Scalars.One);
            }
            else Thread.Sleep(TimeSpan.FromSeconds(f.Seconds));   // the fault IS the stall
        }
    }
}
