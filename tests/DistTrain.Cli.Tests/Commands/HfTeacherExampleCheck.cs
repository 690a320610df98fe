using System.Text.Json.Nodes;
using DistTrain.Contracts.Specs;
using DistTrain.Execution;
using DistTrain.Models;
using DistTrain.Models.Interop;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>
/// What a finished run of examples/hf-teacher.yaml must show, in process or on a cluster (this file is also compiled into
/// DistTrain.Cluster.Tests): the student's hf/ folder imports back as a GPT2ForSequenceClassification whose logits are
/// the trained stage's, writes itself again bit for bit, and its model card carries the stage's metrics.
/// </summary>
public static class HfTeacherExampleCheck
{
    public static void StudentExportMatchesTheTrainedStage(string specPath, string dataRoot, string runRoot, string jobId)
    {
        var job = JobSpecs.LoadFile(specPath, dataRoot, quick: true, HfCheckpointModels.Instance).Spec!;
        var stage = job.Stage("student")!;
        var artifacts = new StageArtifacts(runRoot, jobId, stage.Name, dataRoot);
        var hf = Path.Combine(artifacts.Directory, HfExport.Folder);
        using var trained = (SequenceClassifier)ObjectiveFactory.LoadTrained(job, stage, artifacts, CPU);
        using var imported = HfGpt2Classifier.Load(hf, TokenizerSpec.SpecialIds);
        trained.eval();
        imported.eval();
        using (no_grad())
        {
            // Classifier inputs as DistTrain builds them: cls, tokenizer ids, sep, right padding (lengths 40, 23, 7).
            var generator = new Generator(11);
            long vocab = trained.Backbone.Config.VocabSize, t = 40;
            var ids = randint(TokenizerSpec.SpecialIds, vocab, [3, t], dtype: ScalarType.Int64, generator: generator); // (B, T)
            var mask = zeros(3, t, ScalarType.Int64);                                                                    // (B, T)
            foreach (var (row, length) in new[] { (0, 40L), (1, 23L), (2, 7L) })
            {
                mask[row].narrow(0, 0, length).fill_(1);
                ids[row][0] = 3;                                                        // cls
                ids[row][length - 1] = 4;                                               // sep
            }
            ids = ids.masked_fill(mask.eq(0), 0);                                       // pad
            var expected = trained.forward(ids, mask, null);                            // (B, C)
            var actual = imported.forward(ids, mask, null);                             // (B, C)
            double diff = (expected - actual).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"the imported student's logits differ from the trained stage's by {diff}");
        }

        // Writing the imported student again gives every tensor back bit for bit, with the stage's class names.
        var classes = System.Text.Json.JsonSerializer.Deserialize<string[]>(File.ReadAllText(artifacts.Classes))!;
        var exported = JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!["id2label"]!.AsObject();
        Assert.Equal(classes, exported.Select(kv => (string)kv.Value!));   // the registry's writer took the stage's class names
        var again = Path.Combine(runRoot, "hf-again");
        HfGpt2Classifier.Export(imported, classes, again, TokenizerSpec.SpecialIds);
        var first = Safetensors.Read(Path.Combine(hf, "model.safetensors"));
        var second = Safetensors.Read(Path.Combine(again, "model.safetensors"));
        Assert.Equal(first.Keys.Order(), second.Keys.Order());
        foreach (var (name, tensor) in first)
            Assert.True(tensor.bytes.SequenceEqual(second[name].bytes), $"{name} changed in import → export");
        Assert.True(File.Exists(Path.Combine(hf, "vocab.json")) && File.Exists(Path.Combine(hf, "merges.txt")), "the tokenizer files were not exported");

        // The card names the architecture and carries every metric of the stage's metrics.json.
        var card = File.ReadAllText(Path.Combine(hf, "README.md"));
        Assert.Contains(HfGpt2Classifier.Architecture, card);
        var metrics = JsonNode.Parse(File.ReadAllText(artifacts.Metrics))!;
        Assert.Contains($"steps: {metrics["steps"]}, workers: {metrics["world_size"]}", card);
        var values = metrics["metrics"]!.AsObject();
        Assert.True(values.Count > 0, "metrics.json has no metrics");
        foreach (var (key, value) in values)
            Assert.Contains($"| {key} | {value} |", card);
    }
}
