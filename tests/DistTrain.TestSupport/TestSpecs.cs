namespace DistTrain.TestSupport;

/// <summary>Job spec texts shared by the test projects, sized to run in seconds on a CPU.</summary>
public static class TestSpecs
{
    /// <summary>A valid single-stage spec: a 1-layer GPT on 64 examples of the bundled Brown Corpus.</summary>
    public static string TinyGpt(string name = "tiny-gpt", int steps = 8) => $$"""
        name: {{name}}
        seed: 3
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512, dropout: 0.0}
            data: {corpus: brown, seq_len: 32, max_examples: 64}
            train: {steps: {{steps}}, batch_size: 8, lr: 3.0e-3}
        """;
}
