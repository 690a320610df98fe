using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>One broken spec per row: each must fail with the expected path and message, never with an exception.</summary>
public sealed class MalformedSpecTests
{
    private const string Pre = "  - {name: pre, kind: pretrain}\n";
    private const string Ft = "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre}}\n";
    private const string Gpt = """
        defaults:
          model: {family: gpt, layers: 2, hidden: 64, heads: 2, max_len: 64, vocab_size: 1000}
          data: {corpus: brown}
          train: {steps: 10, batch_size: 8}
        """;

    private static string J(string stages, string defaults = SpecText.Defaults) => SpecText.Job(stages, defaults);

    private static string Stage(string body) => J($"  - {{name: pre, kind: pretrain, {body}}}\n");

    /// <summary>(case name, spec text, expected path, fragment of the expected message).</summary>
    public static TheoryData<string, string, string, string> Cases => new()
    {
        // Document shape and limits
        { "empty", "", "$", "the spec is empty" },
        { "root is a list", "- a\n- b\n", "$", "must be a mapping, not a list" },
        { "invalid yaml", "name: [unclosed\n", "$", "invalid YAML at line" },
        { "unclosed flow sequence holding a key", "name: t\ndata:\n  [path: a.jsonl\ntrain:\n  steps: 3\n", "$", "invalid YAML" },
        { "duplicate key", "name: a\nname: b\nstages: []\n", "$", "invalid YAML" },
        { "anchors", J(Pre) + "x: &a 1\n", "$", "anchors and aliases are not supported" },
        { "two documents", J(Pre) + "---\nname: u\n", "$", "a spec is a single YAML document" },
        { "deep nesting", "name: " + new string('[', 40) + new string(']', 40) + "\n", "$", "nesting deeper than 16 levels" },
        { "oversized", "name: t\n# " + new string('x', SpecLimits.MaxSpecBytes) + "\n", "$", "the limit is 262144" },
        { "too many stages", J(string.Concat(Enumerable.Range(0, 65).Select(i => $"  - {{name: s{i}, kind: pretrain}}\n"))), "stages", "65 stages; the limit is 64" },

        // Keys and types
        { "unknown top key", J(Pre) + "bogus: 1\n", "bogus", "unknown key; expected one of name, seed, priority, tokenizer, defaults, stages" },
        { "missing name", "stages:\n" + Pre.Replace("pre,", "pre,") + SpecText.Defaults.Replace("defaults:", "defaults:"), "name", "required" },
        { "missing stages", "name: t\n", "stages", "required: a job has at least one stage" },
        { "stages not a list", "name: t\nstages: 5\n", "stages", "must be a list, not '5'" },
        { "unknown stage key", Stage("colour: red"), "stages[0].colour", "unknown key" },
        { "stage without kind", J("  - {name: pre}\n"), "stages[0].kind", "required" },
        { "unknown kind", J("  - {name: pre, kind: pretrian}\n"), "stages[0].kind", "must be one of pretrain, finetune, sft, reward, dpo, label, distill, evaluate, not 'pretrian'" },
        { "unknown family", Stage("model: {family: bart}"), "stages[0].model.family", "must be one of bert, roberta, albert, electra, gpt" },
        { "layers not an integer", Stage("model: {layers: two}"), "stages[0].model.layers", "must be an integer, not 'two'" },
        { "layers fractional", Stage("model: {layers: 2.5}"), "stages[0].model.layers", "must be an integer" },
        { "lr not a number", Stage("train: {lr: fast}"), "stages[0].train.lr", "must be a finite number" },
        { "lr nan", Stage("train: {lr: .nan}"), "stages[0].train.lr", "must be a finite number" },
        { "model is a list", Stage("model: [1, 2]"), "stages[0].model", "must be a mapping, not a list" },
        { "unknown objective", Stage("objective: mlmm"), "stages[0].objective", "must be one of mlm, clm, rtd" },
        { "objective key for another kind", Stage("objective: {kind: mlm, temperature: 2}"), "stages[0].objective.temperature", "unknown key for objective 'mlm'" },
        { "objective without kind", Stage("objective: {mask_prob: 0.2}"), "stages[0].objective.kind", "required" },
        { "classification without task", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: classification}\n"), "stages[1].objective", "classification needs a task" },
        { "unknown task", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: sentiment}}\n"), "stages[1].objective.task", "must be one of genre, spam, pos" },
        { "finetune without objective", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}}\n"), "stages[1].objective", "required: finetune needs" },
        { "unknown defaults section", J(Pre, SpecText.Defaults + "\n  optimizer: {}"), "defaults.optimizer", "unknown key" },
        { "bad type in defaults keeps its path", J(Pre, SpecText.Defaults.Replace("batch_size: 8", "batch_size: eight")), "defaults.train.batch_size", "must be an integer" },
        { "needs not a list", Stage("needs: other"), "stages[0].needs", "must be a list" },
        { "two data sources", Stage("data: {path: a.txt, corpus: spam}"), "stages[0].data", "give one data source" },
        { "no data source", "name: t\nstages:\n  - {name: p, kind: pretrain, model: {family: gpt, layers: 1, hidden: 8, heads: 1, max_len: 8, vocab_size: 10}}\n", "stages[0].data", "needs a source" },
        { "no model", "name: t\nstages:\n  - {name: p, kind: pretrain, data: {corpus: brown}}\n", "stages[0].model", "required (no defaults.model" },
        { "worker range without max", Stage("distributed: {workers: {min: 2}}"), "stages[0].distributed.workers.max", "required" },
        { "bool not true/false", J(Pre + Ft + "  - {name: l, kind: label, inputs: {teacher: ft}, outputs: {soft_labels: yes}}\n"), "stages[2].outputs.soft_labels", "must be true or false" },
        { "unknown metric", J(Pre + Ft + "  - {name: e, kind: evaluate, inputs: {init: ft}, outputs: {metrics: [acc]}}\n"), "stages[2].outputs.metrics[0]", "must be one of accuracy, macro_f1, perplexity, agreement" },
        { "init names a missing stage", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: ghost}, objective: {kind: classification, task: genre}}\n"), "stages[1].inputs.init", "no stage named 'ghost'" },

        // Names and the DAG
        { "bad stage name", J("  - {name: Pre Train, kind: pretrain}\n"), "stages[0].name", "must be lowercase letters" },
        { "bad job name", SpecText.Job(Pre).Replace("name: t\n", "name: -t\n"), "name", "must be lowercase letters" },
        { "duplicate stage names", J(Pre + Pre), "stages[1].name", "duplicate of stages[0].name ('pre')" },
        { "needs a missing stage", J(Pre + "  - {name: b, kind: pretrain, needs: [ghost]}\n"), "stages[1].needs[0]", "no stage named 'ghost'" },
        { "needs itself", J("  - {name: pre, kind: pretrain, needs: [pre]}\n"), "stages[0].needs[0]", "a stage cannot depend on itself" },
        { "cycle", J("  - {name: a, kind: pretrain, needs: [c]}\n  - {name: b, kind: pretrain, needs: [a]}\n  - {name: c, kind: pretrain, needs: [b]}\n"), "stages[0]", "dependency cycle: a -> b -> c -> a" },

        // Shapes
        { "zero layers", Stage("model: {layers: 0}"), "stages[0].model.layers", "must be > 0" },
        { "hidden not divisible by heads", Stage("model: {heads: 3}"), "stages[0].model.heads", "hidden (64) must be divisible by heads (3)" },
        { "vocab too small for specials", Stage("model: {vocab_size: 294}"), "stages[0].model.vocab_size", "must be > 294: the tokenizer reserves 294 ids" },
        { "dropout out of range", Stage("model: {dropout: 1.5}"), "stages[0].model.dropout", "must be >= 0 and < 1" },
        { "seq_len above max_len", Stage("data: {seq_len: 100}"), "stages[0].data.seq_len", "100 exceeds model.max_len (64)" },
        { "albert embedding wider than hidden", Stage("model: {family: albert, embedding_size: 128}"), "stages[0].model.embedding_size", "128 exceeds hidden (64)" },
        { "unknown pooling", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre, pooling: max}}\n"), "stages[1].objective.pooling", "must be one of cls, last, mean" },
        { "pooling for pos", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: pos, pooling: mean}}\n"), "stages[1].objective.pooling", "pooling is for sequence tasks" },
        { "cls pooling on gpt", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre, pooling: cls}}\n", Gpt), "stages[1].objective.pooling", "gpt has no [CLS]" },
        { "unknown norm", Stage("model: {norm: middle}"), "stages[0].model.norm", "must be one of post, pre" },
        { "norm on xlnet", Stage("model: {family: xlnet, norm: pre}, objective: plm"), "stages[0].model.norm", "xlnet keeps its paper's placement" },
        { "finetune changes the init norm", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, model: {norm: pre}, objective: {kind: classification, task: genre}}\n"), "stages[1].model.norm", "pre differs from init stage 'pre' (post)" },
        { "embedding_size on bert", Stage("model: {embedding_size: 32}"), "stages[0].model.embedding_size", "only albert and electra factorise embeddings" },
        { "generator on bert", Stage("model: {generator: {hidden: 32, heads: 1}}"), "stages[0].model.generator", "only electra has a generator" },
        { "electra rtd without generator", Stage("model: {family: electra}"), "stages[0].model.generator", "required for rtd" },
        { "electra generator larger than discriminator", Stage("model: {family: electra, generator: {hidden: 128, heads: 2}}"), "stages[0].model.generator.hidden", "128 exceeds the discriminator's hidden (64)" },
        { "finetune changes the init shape", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, model: {hidden: 128}, objective: {kind: classification, task: genre}}\n"), "stages[1].model.hidden", "128 differs from init stage 'pre' (64)" },

        // Kinds, objectives, inputs
        { "classification in pretrain", Stage("objective: {kind: classification, task: genre}"), "stages[0].objective", "'classification' does not fit a pretrain stage; use mlm or clm or rtd" },
        { "clm on an encoder", Stage("objective: clm"), "stages[0].objective", "clm needs the gpt family, not bert" },
        { "mlm on gpt", J(Pre.Replace("}", ", objective: mlm}"), Gpt), "stages[0].objective", "mlm needs an encoder family, not gpt" },
        { "sft on an encoder", J(Pre + "  - {name: s, kind: sft, inputs: {init: pre}}\n"), "stages[1].objective", "sft needs the gpt family, not bert" },
        { "label with an objective", J(Pre + Ft + "  - {name: l, kind: label, inputs: {teacher: ft}, objective: mlm}\n"), "stages[2].objective", "label stages do not train" },
        { "dpo without reference", J(Pre + "  - {name: d, kind: dpo, inputs: {init: pre}}\n", Gpt), "stages[1].inputs.reference", "required for dpo" },
        { "dpo without init", J(Pre + "  - {name: d, kind: dpo, inputs: {reference: pre}}\n", Gpt), "stages[1].inputs.init", "required for dpo" },
        { "dpo reference of another shape", J(Pre + "  - {name: big, kind: pretrain, model: {layers: 4}}\n  - {name: d, kind: dpo, inputs: {init: pre, reference: big}}\n", Gpt), "stages[2].model.layers", "2 differs from reference stage 'big' (4)" },
        { "reference outside dpo", J(Pre + "  - {name: s, kind: sft, inputs: {init: pre, reference: pre}}\n", Gpt), "stages[1].inputs.reference", "only dpo stages use a reference model" },
        { "distill without teacher or labels", J(Pre + "  - {name: st, kind: distill}\n"), "stages[1].inputs", "distill needs a teacher, stored labels, or both" },
        { "label without teacher", J(Pre + "  - {name: l, kind: label}\n"), "stages[1].inputs.teacher", "required for label" },
        { "label teacher is not a classifier", J(Pre + "  - {name: l, kind: label, inputs: {teacher: pre}}\n"), "stages[1].inputs.teacher", "'pre' is not a classifier" },
        { "labels from a pretrain stage", J(Pre + "  - {name: st, kind: distill, inputs: {labels: pre}}\n"), "stages[1].inputs.labels", "'pre' is a pretrain stage; labels come from a label stage" },
        { "init from a label stage", J(Pre + Ft + "  - {name: l, kind: label, inputs: {teacher: ft}}\n  - {name: e, kind: evaluate, inputs: {init: l}}\n"), "stages[3].inputs.init", "'l' is a label stage and produces no checkpoint" },
        { "data.from a pretrain stage", Stage("data: {from: other}").Replace("stages:\n", "stages:\n  - {name: other, kind: pretrain}\n"), "stages[1].data.from", "only label stages write data sets" },
        { "evaluate without init", J(Pre + "  - {name: e, kind: evaluate}\n"), "stages[1].inputs.init", "required for evaluate" },
        { "student too large", J(Pre + Ft + "  - {name: st, kind: distill, inputs: {teacher: ft}, objective: {kind: distill, max_param_ratio: 0.4}}\n"), "stages[2].model", "objective.max_param_ratio allows 40%" },
        { "student vocab differs", J(Pre + Ft + "  - {name: st, kind: distill, inputs: {teacher: ft}, model: {vocab_size: 900}}\n"), "stages[2].model.vocab_size", "must equal teacher 'ft' vocab_size (1000)" },
        { "task on the wrong corpus", J(Pre + "  - {name: ft, kind: finetune, inputs: {init: pre}, data: {corpus: spam}, objective: {kind: classification, task: genre}}\n"), "stages[1].data.corpus", "task 'genre' is labelled only in the brown corpus" },
        { "perplexity of a classifier", J(Pre + Ft + "  - {name: e, kind: evaluate, inputs: {init: ft}, outputs: {metrics: [perplexity]}}\n"), "stages[2].outputs.metrics[0]", "'ft' is not a language model" },
        { "agreement without teacher", J(Pre + Ft + "  - {name: e, kind: evaluate, inputs: {init: ft}, outputs: {metrics: [agreement]}}\n"), "stages[2].outputs.metrics[0]", "agreement compares with inputs.teacher" },
        { "soft labels outside label", Stage("outputs: {soft_labels: true}"), "stages[0].outputs.soft_labels", "only label stages write labels" },
        { "distill alpha out of range", J(Pre + Ft + "  - {name: st, kind: distill, inputs: {teacher: ft}, objective: {kind: distill, alpha: 2}}\n"), "stages[2].objective.alpha", "must be between 0 and 1" },
        { "mask_prob zero", Stage("objective: {kind: mlm, mask_prob: 0}"), "stages[0].objective.mask_prob", "must be > 0 and < 1" },

        // Paths under the data root
        { "absolute path", Stage("data: {path: /etc/passwd}"), "stages[0].data.path", "must be relative to the data root" },
        { "dot-dot path", Stage("data: {path: corpora/../../secrets}"), "stages[0].data.path", "must not contain '..'" },
        { "backslash path", Stage(@"data: {path: 'corpora\x.txt'}"), "stages[0].data.path", "must use '/'" },
        { "home path", Stage("data: {path: ~root/x}"), "stages[0].data.path", "must not start a segment with '~'" },

        // Numeric ranges
        { "zero lr", Stage("train: {lr: 0}"), "stages[0].train.lr", "must be > 0 and <= 1" },
        { "zero steps", Stage("train: {steps: 0}"), "stages[0].train.steps", "must be > 0" },
        { "warmup beyond steps", Stage("train: {warmup: 11}"), "stages[0].train.warmup", "11 exceeds steps (10)" },
        { "batch not divisible by micro-batches", Stage("train: {micro_batches: 3}"), "stages[0].train.batch_size", "8 is not divisible by micro_batches (3)" },
        { "batch not divisible by a worker count", Stage("distributed: {workers: {min: 1, max: 3}}"), "stages[0].train.batch_size", "which 3 workers cannot split evenly" },
        { "workers min above max", Stage("distributed: {workers: {min: 4, max: 2}}"), "stages[0].distributed.workers", "min (4) must be <= max (2)" },
        { "zero workers", Stage("distributed: {workers: 0}"), "stages[0].distributed.workers", "min must be >= 1" },
        { "negative restarts", Stage("distributed: {max_restarts: -1}"), "stages[0].distributed.max_restarts", "must be >= 0" },
        { "negative gradient buckets", Stage("distributed: {gradient_bucket_mb: -1}"), "stages[0].distributed.gradient_bucket_mb", "must be a number from 0" },
        { "gradient buckets above 1 GiB", Stage("distributed: {gradient_bucket_mb: 4096}"), "stages[0].distributed.gradient_bucket_mb", "to 1024" },
        { "max_examples zero", Stage("data: {max_examples: 0}"), "stages[0].data.max_examples", "must be > 0" },
        { "train_examples zero", Stage("data: {train_examples: 0}"), "stages[0].data.train_examples", "must be > 0" },
        { "train_examples on a label stage", J(Pre + Ft + "  - {name: l, kind: label, inputs: {teacher: ft}, data: {train_examples: 10}}\n"), "stages[2].data.train_examples", "a label stage does not train" },
        { "train_examples on a distill stage", J(Pre + Ft + "  - {name: l, kind: label, inputs: {teacher: ft}}\n  - {name: st, kind: distill, inputs: {labels: l}, data: {train_examples: 10}}\n"), "stages[3].data.train_examples", "trains on what its label stage labelled" },
        { "freeze_backbone on a pretrain stage", Stage("train: {steps: 5, freeze_backbone: true}"), "stages[0].train.freeze_backbone", "a pretrain stage has no new head to train alone" },
        { "freeze_backbone on t5", J("  - {name: ft, kind: finetune, model: {family: t5, layers: 1, hidden: 32, heads: 2, max_len: 32, vocab_size: 1000}, objective: {kind: classification, task: genre}, train: {steps: 5, freeze_backbone: true}}\n"), "stages[0].train.freeze_backbone", "no separate head" },
        { "priority too high", J(Pre).Replace("name: t\n", "name: t\npriority: 500\n"), "priority", "must be between 0 and 100" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_spec_is_reported_at_its_path(string name, string yaml, string path, string fragment)
    {
        var result = JobSpecs.Load(yaml);
        Assert.Null(result.Spec);
        Assert.True(
            result.Errors.Any(e => e.Path == path && e.Message.Contains(fragment, StringComparison.Ordinal)),
            $"{name}: expected '{path}: …{fragment}…' in\n{SpecText.Describe(result.Errors)}");
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        var result = JobSpecs.Load(Stage("model: {layers: 0, heads: 3}, train: {lr: 0, steps: 0}"));
        var paths = result.Errors.Select(e => e.Path).ToHashSet();
        Assert.Superset(new HashSet<string> { "stages[0].model.layers", "stages[0].model.heads", "stages[0].train.lr", "stages[0].train.steps" }, paths);
    }

    [Fact]
    public void Error_in_defaults_is_reported_once_not_per_stage()
    {
        var result = JobSpecs.Load(J(Pre + "  - {name: b, kind: pretrain}\n", SpecText.Defaults.Replace("steps: 10", "steps: ten")));
        Assert.Single(result.Errors, e => e.Path == "defaults.train.steps");
    }
}
