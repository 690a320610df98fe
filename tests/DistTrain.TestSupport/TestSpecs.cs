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

    /// <summary>A 1-layer, 16-wide GPT on GPT-2's tokenizer for 2 steps that exports itself in Hugging Face layout (<c>outputs.export: hf</c>).</summary>
    public static string HfExportingGpt(string name, int seed, int maxExamples) => $$"""
        name: {{name}}
        seed: {{seed}}
        tokenizer: {kind: gpt2}
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: {{maxExamples}}}
            train: {steps: 2, batch_size: 4, lr: 1.0e-3, warmup: 1}
            outputs: {export: hf}
        """;
}
