using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary><c>train.freeze_backbone</c>: a linear probe trains the head alone and leaves the pre-trained backbone bit-for-bit as it was.</summary>
public sealed class FreezeBackboneTests
{
    /// <summary>The tiny GPT of <see cref="TinySpecs.Gpt"/>, then a probe of it on genre.</summary>
    private const string Spec = TinySpecs.Gpt + """

          - name: probe
            kind: finetune
            inputs: {init: lm}
            objective: {kind: classification, task: genre, pooling: mean}
            data: {corpus: brown, seq_len: 32, max_examples: 128}
            train: {steps: 5, batch_size: 8, lr: 3.0e-3, warmup: 1, freeze_backbone: true}
        """;

    [Fact]
    public void A_probe_trains_only_its_head_and_keeps_the_pretrained_backbone_exactly()
    {
        torch.set_num_threads(1);
        var job = TinySpecs.Load(Spec);
        using var dir = new TempDir();
        var report = new PipelineRunner(dir.Path, "job", CPU).Run(job);
        var brown = DataCatalog.Shared.Brown((ulong)job.Seed, 512);

        using var pretrained = ObjectiveFactory.BuildModule(job, job.Stages[0], brown);
        ModelBuilder.LoadFinal(pretrained, new StageArtifacts(dir.Path, "job", "lm"));
        using var initial = ObjectiveFactory.BuildModule(job, job.Stages[1], brown);     // the probe before training (seeded)
        using var probe = ObjectiveFactory.BuildModule(job, job.Stages[1], brown);
        ModelBuilder.LoadFinal(probe, new StageArtifacts(dir.Path, "job", "probe"));

        var source = ((IHasBackbone)pretrained).Backbone.state_dict();
        var kept = ((IHeadOnBackbone)probe).Backbone.state_dict();
        Assert.Equal(source.Keys.Order(), kept.Keys.Order());
        foreach (var (name, tensor) in kept)
            Assert.True(tensor.allclose(source[name], rtol: 0, atol: 0), $"backbone tensor {name} changed under freeze_backbone");

        // The head did train, and the metrics count it apart from the frozen part.
        var headNames = probe.named_parameters().Select(p => p.name).Where(n => !n.StartsWith("backbone.")).ToList();
        Assert.NotEmpty(headNames);
        var before = initial.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Contains(probe.named_parameters(), p => headNames.Contains(p.name) && !p.parameter.allclose(before[p.name], rtol: 0, atol: 0));
        long head = probe.named_parameters().Where(p => headNames.Contains(p.name)).Sum(p => p.parameter.numel());
        Assert.Equal(head, (long)report.Stages["probe"]["parameters"]);
        Assert.Equal(ModelFactory.ParameterCount(probe) - head, (long)report.Stages["probe"]["frozen_parameters"]);
        Assert.False(report.Stages["lm"].ContainsKey("frozen_parameters"));
    }

    [Fact]
    public void A_frozen_backbone_gets_no_gradient_and_no_optimizer_state()
    {
        var job = TinySpecs.Load(Spec);
        var brown = DataCatalog.Shared.Brown((ulong)job.Seed, 512);
        using var model = ObjectiveFactory.BuildModule(job, job.Stages[1], brown);
        ((IHeadOnBackbone)model).FreezeBackbone();
        var trainable = Trainer.TrainableParameters(model);
        var backbone = ((IHeadOnBackbone)model).Backbone.parameters().Select(p => p.Handle).ToHashSet();
        Assert.NotEmpty(trainable);
        Assert.DoesNotContain(trainable, p => backbone.Contains(p.Handle));
    }
}
