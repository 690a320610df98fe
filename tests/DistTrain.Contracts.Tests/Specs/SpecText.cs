using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>Small valid spec texts that tests mutate one field at a time, so each case fails for exactly one reason.</summary>
internal static class SpecText
{
    public const string Defaults = """
        defaults:
          model: {family: bert, layers: 2, hidden: 64, heads: 2, max_len: 64, vocab_size: 1000}
          data: {corpus: brown}
          train: {steps: 10, batch_size: 8}
        """;

    /// <summary>A job named t with the shared defaults and the given <c>stages:</c> body.</summary>
    public static string Job(string stages, string defaults = Defaults) => $"name: t\n{defaults}\nstages:\n{stages}";

    /// <summary>pre (bert pretrain) → ft (genre classifier), valid as is.</summary>
    public const string TwoStages =
        "  - {name: pre, kind: pretrain}\n" +
        "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre}}\n";

    public static string ExamplePath(string file) => Path.Combine(AppContext.BaseDirectory, "examples", file);

    public static string Describe(IEnumerable<SpecError> errors) => string.Join("\n", errors.Select(e => e.ToString()));
}
