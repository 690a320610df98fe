using System.Text.Json.Nodes;
using DistTrain.Contracts.Specs;
using DistTrain.Models;
using DistTrain.Models.Interop;
using static TorchSharp.torch;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>
/// `disttrain export` as a user runs it (a real process): a finished stage's folder (GPT, and ALBERT for the encoder
/// families) becomes the same Hugging Face directory the run's own <c>outputs.export: hf</c> wrote, and that directory
/// round-trips bit-exactly through import.
/// </summary>
public sealed class ExportCommandTests
{
    private static readonly string Spec = TestSpecs.HfExportingGpt("cli-export", seed: 5, maxExamples: 32);

    [Theory]
    [InlineData("gpt", "clm", "gpt2")]
    [InlineData("albert", "mlm", "albert")]
    public void Export_writes_the_runs_own_hf_directory_and_it_round_trips_bit_exactly(string family, string objective, string modelType)
    {
        using var dir = new TempDir();
        string spec = Path.Combine(dir.Path, "spec.yaml");
        // The same tiny stage for an encoder family: its HF writer is reached through the same registry.
        File.WriteAllText(spec, family == "gpt" ? Spec : Spec.Replace("family: gpt", $"family: {family}").Replace("objective: clm", $"objective: {objective}")
            .Replace("dropout: 0.0}", "dropout: 0.0, embedding_size: 8}"));
        string run = Path.Combine(dir.Path, "run");
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(5), "run", spec, "--out", run, "--threads", "1");
        Assert.True(code == 0, stdout + stderr);

        string exported = Path.Combine(dir.Path, "exported");
        (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(3), "export", Path.Combine(run, "lm"), "--format", "hf", "--out", exported, "--spec", spec);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains(exported, stdout);

        // One code path: the command writes byte for byte what the stage's outputs.export wrote.
        var inRun = Path.Combine(run, "lm", "hf");
        var files = Directory.GetFiles(inRun).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(files, Directory.GetFiles(exported).Select(Path.GetFileName).Order().ToArray());
        Assert.Contains("model.safetensors", files);
        foreach (var file in files)
            Assert.True(File.ReadAllBytes(Path.Combine(inRun, file!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(exported, file!))), $"{file} differs");
        Assert.Equal(modelType, (string)JsonNode.Parse(File.ReadAllText(Path.Combine(exported, "config.json")))!["model_type"]!);

        // Import the written directory and write it again: every tensor comes back bit for bit.
        string again = Path.Combine(dir.Path, "again");
        var hf = HfFamilies.Of(exported);
        using (var model = hf.Create(exported, hf.ReadConfig(exported, TokenizerSpec.SpecialIds)))
        {
            hf.Import(model, exported, TokenizerSpec.SpecialIds);
            hf.Export(model, again, TokenizerSpec.SpecialIds, null);
        }
        var first = Safetensors.Read(Path.Combine(exported, "model.safetensors"));
        var second = Safetensors.Read(Path.Combine(again, "model.safetensors"));
        Assert.Equal(first.Keys.Order(), second.Keys.Order());
        foreach (var (name, tensor) in first)
        {
            Assert.Equal(tensor.dtype, second[name].dtype);
            Assert.Equal(tensor.shape, second[name].shape);
            Assert.True(tensor.contiguous().bytes.SequenceEqual(second[name].contiguous().bytes), $"{name} changed in the round trip");
        }
    }

    [Fact]
    public void Export_of_a_folder_that_is_not_a_stage_of_the_spec_is_refused()
    {
        using var dir = new TempDir();
        string spec = Path.Combine(dir.Path, "spec.yaml");
        File.WriteAllText(spec, Spec);
        var notAStage = Directory.CreateDirectory(Path.Combine(dir.Path, "run", "nope")).FullName;
        var (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "export", notAStage, "--out", Path.Combine(dir.Path, "x"), "--spec", spec);
        Assert.Equal(2, code);
        Assert.Contains("is not the folder of a training stage", stderr);
    }
}
