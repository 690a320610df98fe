using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Engine;

/// <summary>
/// Deliberate faults for chaos tests, read from <c>DISTTRAIN_FAULTS</c> (unset in normal runs). Supported:
/// <c>corrupt-parameter:rank=R:step=S</c> adds 1e-3 to the first parameter of rank R after step S, the silent
/// replica divergence the cross-rank checksum must catch. See docs/configuration.md.
/// </summary>
public sealed record FaultInjection(int? CorruptRank, int? CorruptStep)
{
    public const string Variable = "DISTTRAIN_FAULTS";
    public static readonly FaultInjection None = new(null, null);

    public static FaultInjection FromEnvironment() => Parse(Environment.GetEnvironmentVariable(Variable));

    public static FaultInjection Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return None;
        var parts = text.Split(':');
        if (parts[0] != "corrupt-parameter") throw new ArgumentException($"{Variable}='{text}': unknown fault '{parts[0]}' (corrupt-parameter)");
        var fields = parts.Skip(1).Select(p => p.Split('=')).ToDictionary(kv => kv[0], kv => int.Parse(kv[1]));
        if (!fields.TryGetValue("rank", out int rank) || !fields.TryGetValue("step", out int step))
            throw new ArgumentException($"{Variable}='{text}': corrupt-parameter needs rank=R:step=S");
        return new FaultInjection(rank, step);
    }

    /// <summary>Applies the configured fault, if it is due on this rank after this step.</summary>
    public void AfterStep(int rank, int step, nn.Module model)
    {
        if (CorruptRank != rank || CorruptStep != step) return;
        using var _ = no_grad();
        Trainer.TrainableParameters(model)[0].add_(1e-3);
    }
}
