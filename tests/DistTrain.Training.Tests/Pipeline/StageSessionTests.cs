using DistTrain.Execution;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Tokenization;
using DistTrain.Training.Engine;
using DistTrain.Training.Pipeline;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>The training session on real data: resume is bit-exact, accumulation equals one big batch, bad steps change nothing.</summary>
public sealed class StageSessionTests
{
    private static StageSession Open(JobSpec job, string root, string? resume = null)
    {
        torch.set_num_threads(1);
        return new StageSession(job, job.Stages[0], new StageArtifacts(root, "job", job.Stages[0].Name), CPU, LocalReducer.Instance, resume);
    }

    private static float[] Parameters(StageSession session)
    {
        var field = typeof(StageSession).GetField("_objective", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var model = ((Objectives.Objective)field.GetValue(session)!).Model;
        return Trainer.TrainableParameters(model).SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();
    }

    [Fact]
    public void Resume_from_a_checkpoint_is_bit_exact()
    {
        var job = TinySpecs.Load(TinySpecs.Gpt);
        using var a = new TempDir();
        using var b = new TempDir();

        float[] straight;
        using (var s = Open(job, a.Path))
        {
            for (int step = 0; step < 6; step++) s.RunStep(step);
            straight = Parameters(s);
        }

        string checkpoint;
        using (var s = Open(job, b.Path))
        {
            for (int step = 0; step < 3; step++) s.RunStep(step);
            checkpoint = s.SaveCheckpoint();
            s.RunStep(3);   // work past the checkpoint that a crash would lose
        }
        float[] resumed;
        using (var s = Open(job, b.Path, checkpoint))
        {
            Assert.Equal(3, s.NextStep);
            for (int step = 3; step < 6; step++) s.RunStep(step);
            resumed = Parameters(s);
        }
        Assert.Equal(straight.Length, resumed.Length);
        for (int i = 0; i < straight.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(straight[i]) == BitConverter.SingleToInt32Bits(resumed[i]), $"parameter {i}: {straight[i]} vs {resumed[i]}");
    }

    [Fact]
    public void Gradient_accumulation_normalises_by_the_total_target_count()
    {
        // Packed sequences have different lengths, so per-micro-batch means would weight tokens unequally.
        var job = TinySpecs.Load(TinySpecs.Gpt);
        using var a = new TempDir();
        using var b = new TempDir();
        float[] oneBatch, fourMicro;
        using (var s = Open(job, a.Path)) { for (int i = 0; i < 4; i++) s.RunStep(i); oneBatch = Parameters(s); }
        var accumulated = TinySpecs.WithTrain(job, t => t with { MicroBatches = 4 });
        using (var s = Open(accumulated, b.Path)) { for (int i = 0; i < 4; i++) s.RunStep(i); fourMicro = Parameters(s); }
        double maxDiff = oneBatch.Zip(fourMicro, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(maxDiff < 1e-5, $"max |Δ| = {maxDiff}");
    }

    [Fact]
    public void A_checkpoint_with_a_corrupt_file_is_refused_by_name()
    {
        var job = TinySpecs.Load(TinySpecs.Gpt);
        using var dir = new TempDir();
        string checkpoint;
        using (var s = Open(job, dir.Path)) { s.RunStep(0); checkpoint = s.SaveCheckpoint(); }
        var model = Path.Combine(checkpoint, "model.bin");
        var bytes = File.ReadAllBytes(model);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(model, bytes);
        var e = Assert.Throws<Checkpointing.CheckpointException>(() => Open(job, dir.Path, checkpoint));
        Assert.Contains("model.bin", e.Message);
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void The_final_weights_are_exported_as_safetensors_that_load_back_exactly()
    {
        var job = TinySpecs.Load(TinySpecs.Gpt);
        using var dir = new TempDir();
        float[] trained;
        using (var s = Open(job, dir.Path)) { for (int i = 0; i < 6; i++) s.RunStep(i); trained = Parameters(s); }
        var artifacts = new StageArtifacts(dir.Path, "job", "lm");
        Assert.True(File.Exists(artifacts.SafeTensors));
        using var fresh = ObjectiveFactory.BuildModule(job, job.Stages[0], DataCatalog.Shared.Brown((ulong)job.Seed, 512));
        fresh.load_safetensors(artifacts.SafeTensors);
        var loaded = Trainer.TrainableParameters(fresh).SelectMany(p => p.detach().data<float>().ToArray()).ToArray();
        Assert.Equal(trained, loaded);
    }

    [Fact]
    public void The_spec_and_the_tokenizer_agree_on_reserved_ids()
    {
        Assert.Equal(SubVocabulary.FirstMergedId, ModelFamilies.ReservedTokenIds);
    }
}
