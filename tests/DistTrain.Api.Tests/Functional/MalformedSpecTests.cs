using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using Google.Rpc;
using Grpc.Core;
using Grpc.Health.V1;
using static DistTrain.Api.Tests.Support.Specs;

namespace DistTrain.Api.Tests.Functional;

/// <summary>
/// Fifty different malformed specs, derived from the repository's examples, each refused with INVALID_ARGUMENT (or
/// RESOURCE_EXHAUSTED past the message limit) naming the bad field, while the server goes on serving.
/// </summary>
[Collection(SharedNodeCollection.Name)]
public sealed class MalformedSpecTests(SharedNode shared)
{
    /// <summary>(what is wrong, the spec, the path the error must name).</summary>
    public static IReadOnlyList<(string Case, string Yaml, string Path)> Cases()
    {
        string tiny = TestSpecs.TinyGpt("bad");
        string brown = Example("brown-pipeline.yaml");
        string assistant = Example("assistant-pipeline.yaml");
        string own = Example("own-data/assistant.yaml");
        string stage2 = "\n  - name: second\n    kind: finetune\n    inputs: {init: lm}\n    objective: {kind: classification, task: genre}\n"
            + "    data: {corpus: brown, seq_len: 32, max_examples: 64}\n    train: {steps: 4, batch_size: 8, lr: 1.0e-3}\n";
        return
        [
            // impossible shapes and out-of-range numbers
            ("zero layers", tiny.With("layers: 1", "layers: 0"), "stages[0].model.layers"),
            ("negative layers", tiny.With("layers: 1", "layers: -3"), "stages[0].model.layers"),
            ("zero heads", tiny.With("heads: 2", "heads: 0"), "stages[0].model.heads"),
            ("hidden not divisible by heads", tiny.With("heads: 2", "heads: 5"), "stages[0].model.heads"),
            ("vocabulary below the reserved ids", tiny.With("vocab_size: 512", "vocab_size: 100"), "stages[0].model.vocab_size"),
            ("dropout of 1.5", tiny.With("dropout: 0.0", "dropout: 1.5"), "stages[0].model.dropout"),
            ("sequence longer than the model", tiny.With("seq_len: 32", "seq_len: 64"), "stages[0].data.seq_len"),
            ("zero sequence length", tiny.With("seq_len: 32", "seq_len: 0"), "stages[0].data.seq_len"),
            ("zero examples", tiny.With("max_examples: 64", "max_examples: 0"), "stages[0].data.max_examples"),
            ("negative steps", tiny.With("steps: 8", "steps: -1"), "stages[0].train.steps"),
            ("zero batch", tiny.With("batch_size: 8", "batch_size: 0"), "stages[0].train.batch_size"),
            ("zero learning rate", tiny.With("lr: 3.0e-3", "lr: 0"), "stages[0].train.lr"),
            ("learning rate of 5", tiny.With("lr: 3.0e-3", "lr: 5"), "stages[0].train.lr"),
            ("warmup past the steps", tiny.With("lr: 3.0e-3", "lr: 3.0e-3, warmup: 100"), "stages[0].train.warmup"),
            ("batch not divisible by micro-batches", tiny.With("batch_size: 8", "batch_size: 8, micro_batches: 3"), "stages[0].train.batch_size"),
            ("weight decay of 1.5", tiny.With("lr: 3.0e-3", "lr: 3.0e-3, weight_decay: 1.5"), "stages[0].train.weight_decay"),
            ("negative clip", tiny.With("lr: 3.0e-3", "lr: 3.0e-3, clip: -1"), "stages[0].train.clip"),
            ("workers min above max", brown.With("workers: 2", "workers: {min: 4, max: 2}"), "stages[0].distributed.workers"),
            ("student too large for the teacher", brown.With("max_param_ratio: 0.4", "max_param_ratio: 0.01"), "stages[3]"),
            ("zero distillation temperature", brown.With("temperature: 2.0", "temperature: 0"), "stages[3].objective.temperature"),
            ("dpo beta of zero", assistant.With("beta: 0.1", "beta: 0"), "stages[3].objective.beta"),
            ("job priority 1000", brown.With("priority: 5", "priority: 1000"), "priority"),
            ("negative seed", tiny.With("seed: 3", "seed: -5"), "seed"),
            // unknown kinds and names
            ("unknown stage kind", tiny.With("kind: pretrain", "kind: sorcery"), "stages[0].kind"),
            ("unknown model family", tiny.With("family: gpt", "family: lstm"), "stages[0].model.family"),
            ("unknown corpus", tiny.With("corpus: brown", "corpus: wikipedia"), "stages[0].data.corpus"),
            ("unknown schedule", tiny.With("lr: 3.0e-3", "lr: 3.0e-3, schedule: zigzag"), "stages[0].train.schedule"),
            ("unknown aggregation", brown.With("aggregation: ring", "aggregation: carrier-pigeon"), "defaults.distributed.aggregation"),
            ("unknown wire format", brown.With("wire: bf16", "wire: fp8"), "defaults.distributed.wire"),
            ("objective that does not fit the family", tiny.With("objective: clm", "objective: mlm"), "stages[0].objective"),
            ("unknown key in a stage", tiny.With("    model:", "    modle: {}\n    model:"), "stages[0].modle"),
            ("unknown top-level key", "colour: blue\n" + tiny, "colour"),
            ("job name with spaces", tiny.With("name: bad", "name: Bad Name!"), "name"),
            ("layers as text", tiny.With("layers: 1", "layers: many"), "stages[0].model.layers"),
            // the stage graph: cycles, missing and wrong dependencies
            ("two-stage cycle", tiny.With("kind: pretrain", "kind: pretrain\n    needs: [second]") + stage2, "stages[0]"),
            ("missing needs", tiny.With("kind: pretrain", "kind: pretrain\n    needs: [ghost]"), "stages[0].needs"),
            ("stage that needs itself", tiny.With("kind: pretrain", "kind: pretrain\n    needs: [lm]"), "stages[0].needs"),
            ("init from a missing stage", brown.With("init: pretrain ", "init: ghost "), "stages[1].inputs.init"),
            ("duplicate stage names", tiny + tiny[tiny.IndexOf("\n  - name: lm", StringComparison.Ordinal)..], "stages[1].name"),
            ("dpo without a reference", assistant.With("      reference: sft\n", ""), "stages[3].inputs.reference"),
            ("label stage without a teacher", brown.With("      teacher: teacher\n    data:\n      split: all", "    data:\n      split: all"), "stages[2].inputs.teacher"),
            ("no stages", "name: empty\nstages: []\n", "stages"),
            // paths that escape the data root
            ("parent directory", own.With("data/instructions.jsonl", "../../etc/passwd"), "stages[1].data.path"),
            ("absolute path", own.With("data/instructions.jsonl", "/etc/passwd"), "stages[1].data.path"),
            ("escape through the middle", own.With("data/instructions.jsonl", "data/../../secrets.jsonl"), "stages[1].data.path"),
            ("home directory", own.With("data/instructions.jsonl", "~root/keys.jsonl"), "stages[1].data.path"),
            ("backslash separators", own.With("data/instructions.jsonl", "'data\\..\\..\\sft.jsonl'"), "stages[1].data.path"),
            // not YAML, or too much of it
            ("unclosed bracket", tiny.With("model: {", "model: ["), "$"),
            ("over the spec size limit", tiny + "# " + new string('x', 300 * 1024) + "\n", "spec"),
            ("over the message size limit", tiny + "# " + new string('x', 2 * 1024 * 1024) + "\n", ""),
        ];
    }

    [Fact]
    public async Task Fifty_malformed_specs_each_get_a_clean_error_and_the_server_goes_on_serving()
    {
        var cases = Cases();
        Assert.Equal(50, cases.Select(c => c.Yaml).Distinct().Count());
        using var channel = shared.Node.Channel();
        var client = new Jobs.JobsClient(channel);
        var health = new Health.HealthClient(channel);
        var failures = new List<string>();
        foreach (var (name, yaml, path) in cases)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = yaml },
                deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
            if (path == "")
            {
                if (e.StatusCode != StatusCode.ResourceExhausted) failures.Add($"{name}: {e.StatusCode} {e.Status.Detail}");
            }
            else if (e.StatusCode != StatusCode.InvalidArgument)
                failures.Add($"{name}: {e.StatusCode} {e.Status.Detail}");
            else
            {
                var violations = e.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations ?? [];
                if (!e.Status.Detail.Split('\n').Any(line => line.StartsWith(path + ": ") || line.StartsWith(path + ".") || line.StartsWith(path + "[")))
                    failures.Add($"{name}: no error at '{path}' in: {e.Status.Detail}");
                if (!violations.Any(v => v.Field.StartsWith(path, StringComparison.Ordinal)) || violations.Any(v => v.Description.Length == 0))
                    failures.Add($"{name}: field violations {string.Join(", ", violations.Select(v => v.Field))} lack '{path}'");
            }
            // Still serving, after every single one.
            var check = await health.CheckAsync(new HealthCheckRequest { Service = "disttrain.v1.Jobs" }, deadline: DateTime.UtcNow.AddSeconds(10));
            if (check.Status != HealthCheckResponse.Types.ServingStatus.Serving) failures.Add($"{name}: health {check.Status} afterwards");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // And a good spec is still accepted.
        var ok = await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt("after-bad") }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.False(string.IsNullOrEmpty(ok.JobId));
        await client.CancelJobAsync(new CancelJobRequest { JobId = ok.JobId }, deadline: DateTime.UtcNow.AddSeconds(30));
    }
}
