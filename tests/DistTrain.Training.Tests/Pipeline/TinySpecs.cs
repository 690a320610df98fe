using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>Small real specs on the bundled Brown Corpus, sized for tests (seconds on a CPU).</summary>
public static class TinySpecs
{
    public const string Gpt = """
        name: tiny-gpt
        seed: 7
        stages:
          - name: lm
            kind: pretrain
            objective: clm
            model: {family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32, vocab_size: 512, dropout: 0.0}
            data: {corpus: brown, seq_len: 32, max_examples: 256}
            train: {steps: 6, batch_size: 8, micro_batches: 1, lr: 3.0e-3, warmup: 2}
        """;

    public static JobSpec Load(string yaml)
    {
        var result = JobSpecs.Load(yaml);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        return result.Spec!;
    }

    /// <summary>Runs yaml in this process, one torch thread, with root as the data root and root/runs/job as the run folder.</summary>
    public static void RunUnder(string root, string yaml)
    {
        TorchSharp.torch.set_num_threads(1);
        new PipelineRunner(Path.Combine(root, "runs"), "job", TorchSharp.torch.CPU, null, root).Run(Load(yaml));
    }

    /// <summary>The spec with every stage's train section changed.</summary>
    public static JobSpec WithTrain(JobSpec spec, Func<TrainSpec, TrainSpec> change) =>
        spec with { Stages = spec.Stages.Select(s => s with { Train = change(s.Train) }).ToList() };
}
