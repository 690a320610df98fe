using DistTrain.Execution;
using System.Text.Json.Nodes;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Tokenization;
using DistTrain.Models;
using DistTrain.Models.Interop;
using DistTrain.Training.Pipeline;
using static TorchSharp.torch;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// <c>outputs.export: hf</c>: a GPT stage writes a Hugging Face directory that imports back into the same function, with
/// a model card; the validator refuses the families and objectives that have no export yet.
/// </summary>
public sealed class HfExportTests
{
    private static readonly string Spec = TestSpecs.HfExportingGpt("hf-export", seed: 7, maxExamples: 64);

    [Fact]
    public void A_gpt_stage_exports_a_directory_that_imports_back_to_the_same_logits()
    {
        using var dir = new TempDir();
        var job = TinySpecs.Load(Spec);
        set_num_threads(1);
        var runs = Path.Combine(dir.Path, "runs");
        new PipelineRunner(runs, "job", CPU, null, null).Run(job);

        var artifacts = new StageArtifacts(runs, "job", "lm");
        var hf = Path.Combine(artifacts.Directory, HfExport.Folder);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!;
        Assert.Equal("gpt2", (string)config["model_type"]!);
        Assert.Equal(50257, (int)config["vocab_size"]!);
        Assert.Equal("gelu", (string)config["activation_function"]!);   // trained by DistTrain: exact GELU, said so
        var card = File.ReadAllText(Path.Combine(hf, "README.md"));
        Assert.Contains("steps: 2", card);
        Assert.Contains("| loss |", card);

        using var trained = (GptLanguageModel)ObjectiveFactory.LoadTrained(job, job.Stages[0], artifacts, CPU);
        using var imported = new GptLanguageModel(HfGpt2.ReadConfig(hf, TokenizerSpec.SpecialIds));
        HfGpt2.Import(imported, hf, TokenizerSpec.SpecialIds);
        trained.eval();
        imported.eval();
        using var _ = no_grad();
        var ids = tensor(new long[] { 40, 1000, 50000, 38 }).unsqueeze(0);       // tokenizer ids only: special rows differ by design
        var a = trained.forward(ids, null).narrow(2, TokenizerSpec.SpecialIds, 50257);
        var b = imported.forward(ids, null).narrow(2, TokenizerSpec.SpecialIds, 50257);
        Assert.True(a.allclose(b, 0, 1e-6), "the exported model computes a different function");
    }

    [Theory]
    [InlineData("xlnet", "{kind: classification, task: genre}", "not a classifier or reward model")]
    [InlineData("roberta", "mlm", "a RoBERTa trained from scratch has no position offset")]
    [InlineData("albert", "mlm", "only when embedding_size < hidden (here 16 and 16)")]
    [InlineData("bert", "{kind: mlm, sentence_task: sop}", "a BERT trained with sop has no Hugging Face layout")]
    [InlineData("bert", "mlm", null)]
    [InlineData("gpt", "clm", null)]
    public void The_validator_accepts_gpt_and_bert_and_refuses_models_without_an_hf_layout(string family, string objective, string? error)
    {
        var yaml = Spec.Replace("family: gpt", $"family: {family}").Replace("objective: clm", $"objective: {objective}");
        var result = JobSpecs.Load(yaml);
        if (error is null) Assert.True(result.Ok, string.Join("\n", result.Errors));
        else Assert.Contains(result.Errors, e => e.ToString().Contains("outputs.export") && e.ToString().Contains(error));
    }
}

/// <summary>
/// <c>inputs.init: "hf:DIR"</c>: a GPT stage starts from a checkpoint under the data root; a spec that contradicts
/// config.json, or a tokenizer that is not the checkpoint's, stops the run with the field named.
/// </summary>
public sealed class HfImportTests
{
    private const string Spec = """
        name: hf-import
        seed: 7
        tokenizer: {kind: gpt2}
        stages:
          - name: tune
            kind: pretrain
            objective: clm
            inputs: {init: "hf:models/gpt2-tiny"}
            model: {family: gpt, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0, gelu: tanh}
            data: {corpus: brown, seq_len: 16, max_examples: 64}
            train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
        """;

    /// <summary>A GPT-2-vocabulary checkpoint with tanh GELU, written in HF layout under root/models/gpt2-tiny.</summary>
    private static Dictionary<string, Tensor> WriteCheckpoint(string root)
    {
        manual_seed(11);
        using var model = new GptLanguageModel(new GptConfig
        {
            VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16, Gelu = GeluKind.Tanh,
        });
        var dir = Path.Combine(root, "models", "gpt2-tiny");
        HfGpt2.Export(model, dir, TokenizerSpec.SpecialIds);
        return Safetensors.Read(Path.Combine(dir, "model.safetensors"));
    }

    private static void Run(string root, string yaml) => TinySpecs.RunUnder(root, yaml);

    [Fact]
    public void A_stage_starts_from_the_checkpoint()
    {
        using var dir = new TempDir();
        var hf = WriteCheckpoint(dir.Path);
        Run(dir.Path, Spec);
        var trained = Safetensors.Read(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "tune").SafeTensors);
        var positions = trained.Single(kv => kv.Key.EndsWith("embeddings.position.weight")).Value;
        // Two steps at lr 1e-7 move a weight by well under 1e-5; a fresh initialisation would differ by ~0.02.
        Assert.True(positions.allclose(hf["transformer.wpe.weight"], 0, 1e-5), "the stage did not start from the checkpoint");
    }

    [Theory]
    [InlineData("hidden: 16", "hidden: 32", "model.hidden is 32, config.json's n_embd is 16")]
    [InlineData("gelu: tanh", "gelu: exact", "model.gelu is exact, config.json's activation_function is tanh")]
    public void A_spec_that_contradicts_the_checkpoint_is_an_error_naming_the_field(string from, string to, string error)
    {
        using var dir = new TempDir();
        WriteCheckpoint(dir.Path);
        var yaml = Spec.Replace(from, to);
        var e = Record.Exception(() => Run(dir.Path, yaml));
        Assert.NotNull(e);
        Assert.Contains(error, e.ToString());
    }

    [Fact]
    public void A_tokenizer_that_is_not_the_checkpoints_is_refused_naming_both()
    {
        // The same BPE files in two folders: the checkpoint carries its own copy, the job declares the other one. The
        // sizes agree (so model.vocab_size passes), but only the checkpoint's folder says the files are its tokenizer.
        using var dir = new TempDir();
        var shipped = Path.Combine(OwnData.Folder, "data", "tokenizer");
        var checkpoint = Path.Combine(dir.Path, "models", "bpe-tiny");
        foreach (var folder in new[] { Path.Combine(dir.Path, "tok"), checkpoint })
        {
            Directory.CreateDirectory(folder);
            foreach (var file in Directory.GetFiles(shipped)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }
        int size = DistTrain.Data.Tokenization.Tokenizers.FromFiles(checkpoint).Size;   // with the special ids
        manual_seed(11);
        using (var model = new GptLanguageModel(new GptConfig
        {
            VocabSize = size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16, Gelu = GeluKind.Tanh,
        }))
            HfGpt2.Export(model, checkpoint, TokenizerSpec.SpecialIds);
        var yaml = Spec.Replace("tokenizer: {kind: gpt2}", "tokenizer: {kind: files, path: tok}").Replace("hf:models/gpt2-tiny", "hf:models/bpe-tiny");

        var e = Record.Exception(() => Run(dir.Path, yaml));
        Assert.NotNull(e);
        Assert.Contains("the job's tokenizer must be the checkpoint's", e.ToString());
        Assert.Contains($"path: {Path.Combine("models", "bpe-tiny")}", e.ToString());   // the checkpoint's
        Assert.Contains("the job declares kind files, path tok", e.ToString());          // the job's
        // Declaring the checkpoint's own folder is accepted: the refusal is about which tokenizer, not about files.
        Run(dir.Path, yaml.Replace("path: tok", $"path: {Path.Combine("models", "bpe-tiny")}"));
    }

    [Fact]
    public void The_validator_refuses_hf_init_from_unsafe_paths()
    {
        var outside = JobSpecs.Load(Spec.Replace("hf:models/gpt2-tiny", "hf:../models"));
        Assert.Contains(outside.Errors, e => e.Path.EndsWith("inputs.init"));
    }
}

/// <summary>
/// The encoder families in a job: a RoBERTa mlm stage starts from a checkpoint (positions offset by padding_idx + 1, one
/// token type, both taken from config.json) and exports it back; contradictions name the field; the validator refuses an
/// ELECTRA discriminator under rtd pre-training; a WordPiece vocab.txt is refused with the reason.
/// </summary>
public sealed class HfEncoderImportTests
{
    private const string Spec = """
        name: hf-roberta
        seed: 7
        tokenizer: {kind: gpt2}
        stages:
          - name: mlm
            kind: pretrain
            objective: mlm
            inputs: {init: "hf:models/roberta-tiny"}
            model: {family: roberta, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
            outputs: {export: hf}
        """;

    /// <summary>A RobertaForMaskedLM checkpoint over GPT-2's vocabulary under root/models/roberta-tiny.</summary>
    private static string WriteCheckpoint(string root)
    {
        manual_seed(13);
        using var model = ModelFactory.Create(new RobertaConfig
        {
            VocabSize = TokenizerSpec.Gpt2Size, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16, PositionOffset = 2,
        });
        var dir = Path.Combine(root, "models", "roberta-tiny");
        HfBert.Export(model, dir, TokenizerSpec.SpecialIds, null);
        return dir;
    }

    private static void Run(string root, string yaml) => TinySpecs.RunUnder(root, yaml);

    [Fact]
    public void A_roberta_stage_starts_from_the_checkpoint_and_exports_it_back_in_the_same_layout()
    {
        using var dir = new TempDir();
        var checkpoint = WriteCheckpoint(dir.Path);
        Run(dir.Path, Spec);
        var hf = Path.Combine(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "mlm").Directory, HfExport.Folder);
        var before = Safetensors.Read(Path.Combine(checkpoint, "model.safetensors"));
        var after = Safetensors.Read(Path.Combine(hf, "model.safetensors"));
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        // Two steps at lr 1e-7 move a weight by well under 1e-5; a fresh initialisation would differ by ~0.02.
        foreach (var (name, t) in before)
            Assert.True(t.shape.SequenceEqual(after[name].shape) && t.allclose(after[name], 0, 1e-5), $"{name} did not come from the checkpoint");
        Assert.Equal(HfBert.ReadConfig(checkpoint, TokenizerSpec.SpecialIds), HfBert.ReadConfig(hf, TokenizerSpec.SpecialIds) with { Dropout = 0.1, AttentionDropout = 0.1 });
        Assert.Contains("RobertaForMaskedLM", File.ReadAllText(Path.Combine(hf, "README.md")));
    }

    [Theory]
    [InlineData("hidden: 16", "hidden: 32", "model.hidden is 32, config.json's hidden_size is 16")]
    [InlineData("max_len: 16", "max_len: 12", "model.max_len is 12, config.json's max_position_embeddings − 2")]
    [InlineData("family: roberta", "family: bert", "model.family is bert, config.json's model_type is roberta")]
    public void A_spec_that_contradicts_the_checkpoint_is_an_error_naming_the_field(string from, string to, string error)
    {
        using var dir = new TempDir();
        WriteCheckpoint(dir.Path);
        var e = Record.Exception(() => Run(dir.Path, Spec.Replace(from, to).Replace("seq_len: 16", "seq_len: 12")));
        Assert.NotNull(e);
        Assert.Contains(error, e.ToString());
    }

    [Fact]
    public void The_special_rows_the_importer_fills_are_the_ids_the_datasets_use()
    {
        Assert.Equal((SpecialTokens.Pad, SpecialTokens.Bos, SpecialTokens.Eos, SpecialTokens.Cls, SpecialTokens.Sep, SpecialTokens.Mask),
            (HfEncoderLayout.Pad, HfEncoderLayout.Bos, HfEncoderLayout.Eos, HfEncoderLayout.Cls, HfEncoderLayout.Sep, HfEncoderLayout.Mask));
        Assert.Equal(SpecialTokens.Count, TokenizerSpec.SpecialIds);
    }

    [Fact]
    public void A_checkpoint_with_tokenizer_files_under_a_job_that_declares_gpt2_is_refused_naming_the_folder()
    {
        using var dir = new TempDir();
        var checkpoint = WriteCheckpoint(dir.Path);
        File.WriteAllLines(Path.Combine(checkpoint, "vocab.txt"), ["[PAD]", "[UNK]"]);
        var e = Record.Exception(() => Run(dir.Path, Spec));
        Assert.NotNull(e);
        Assert.Contains($"declare tokenizer: {{kind: files, path: {Path.Combine("models", "roberta-tiny")}}}", e.ToString());
    }

    [Fact]
    public void The_validator_refuses_an_electra_checkpoint_under_rtd_pretraining()
    {
        var yaml = Spec.Replace("family: roberta", "family: electra").Replace("objective: mlm", "objective: rtd")
            .Replace("dropout: 0.0}", "dropout: 0.0, generator: {layers: 1, hidden: 8, heads: 1, ffn: 16}}");
        var result = JobSpecs.Load(yaml);
        Assert.Contains(result.Errors, e => e.ToString().Contains("inputs.init") && e.ToString().Contains("discriminator without its generator"));
    }
}

/// <summary>
/// BERT and ELECTRA in a job: a BertForPreTraining checkpoint with its WordPiece vocab.txt starts an mlm+nsp stage whose
/// tokenizer is that folder, exports back in the same layout (tokenizer files included), and a classifier fine-tunes on
/// top; an ELECTRA discriminator starts a finetune stage directly.
/// </summary>
public sealed class HfBertImportTests
{
    private static readonly string[] Words =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "of", "and", "to", "a", "in", "is", "was", "he", "it", ",", ".", "##s", "##ed", "##ing"];

    private const string Spec = """
        name: hf-bert
        seed: 7
        tokenizer: {kind: files, path: models/bert-tiny}
        stages:
          - name: mlm
            kind: pretrain
            objective: {kind: mlm, sentence_task: nsp}
            inputs: {init: "hf:models/bert-tiny"}
            model: {family: bert, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
            outputs: {export: hf}
          - name: clf
            kind: finetune
            inputs: {init: mlm}
            objective: {kind: classification, task: genre}
            model: {family: bert, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 2, batch_size: 4}
            outputs: {export: hf}
          - name: direct
            kind: finetune
            inputs: {init: "hf:models/bert-tiny"}
            objective: {kind: classification, task: genre}
            model: {family: bert, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
            data: {corpus: brown, seq_len: 16, max_examples: 32}
            train: {steps: 1, batch_size: 4, lr: 1.0e-7, warmup: 1}
        """;

    private static void Run(string root, string yaml)
    {
        var result = JobSpecs.Load(yaml, root);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        set_num_threads(1);
        new PipelineRunner(Path.Combine(root, "runs"), "job", CPU, null, root).Run(result.Spec!);
    }

    [Fact]
    public void A_bert_checkpoint_with_its_wordpiece_vocabulary_pretrains_exports_and_fine_tunes()
    {
        using var dir = new TempDir();
        var checkpoint = Path.Combine(dir.Path, "models", "bert-tiny");
        manual_seed(17);
        using (var model = ModelFactory.Create(new BertConfig
        {
            VocabSize = TokenizerSpec.SpecialIds + Words.Length, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16,
        }))
            HfBert.Export(model, checkpoint, TokenizerSpec.SpecialIds, null);
        File.WriteAllLines(Path.Combine(checkpoint, "vocab.txt"), Words);
        Run(dir.Path, Spec);

        var hf = Path.Combine(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "mlm").Directory, HfExport.Folder);
        var before = Safetensors.Read(Path.Combine(checkpoint, "model.safetensors"));
        var after = Safetensors.Read(Path.Combine(hf, "model.safetensors"));
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.Contains("cls.seq_relationship.weight", after.Keys);
        foreach (var (name, t) in before)
            Assert.True(t.shape.SequenceEqual(after[name].shape) && t.allclose(after[name], 0, 1e-5), $"{name} did not come from the checkpoint");
        Assert.Equal(Words, File.ReadAllLines(Path.Combine(hf, "vocab.txt")));
        Assert.Contains("BertForPreTraining", File.ReadAllText(Path.Combine(hf, "README.md")));

        // A classifier straight from the checkpoint starts with its bert.pooler as the head's pooler, as transformers does.
        var direct = Safetensors.Read(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "direct").SafeTensors);
        Assert.True(direct["head.pooler.weight"].allclose(before["bert.pooler.dense.weight"], 0, 1e-5), "the classifier's pooler is not the checkpoint's");
        Assert.True(direct["backbone.embeddings.position.weight"].allclose(before["bert.embeddings.position_embeddings.weight"], 0, 1e-5), "the classifier's backbone is not the checkpoint's");

        // The classifier exports as BertForSequenceClassification with its class names, and imports back to the same logits.
        var job = JobSpecs.Load(Spec, dir.Path).Spec!;
        var clf = new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "clf", dir.Path);
        var clfHf = Path.Combine(clf.Directory, HfExport.Folder);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(clfHf, "config.json")))!;
        Assert.Equal("BertForSequenceClassification", (string)config["architectures"]![0]!);
        var classes = StageInputs.ClassesOfTrained(job, job.Stage("clf")!, clf);
        Assert.Equal(classes, config["id2label"]!.AsObject().Select(kv => (string)kv.Value!));
        using var trained = (SequenceClassifier)ObjectiveFactory.LoadTrained(job, job.Stage("clf")!, clf, CPU);
        var family = HfFamilies.Of(clfHf);
        using var imported = family.Create(clfHf, family.ReadConfig(clfHf, TokenizerSpec.SpecialIds));
        family.Import(imported, clfHf, TokenizerSpec.SpecialIds);
        trained.eval();
        imported.eval();
        using (no_grad())
        {
            var ids = tensor(new long[] { 38 + 2, 38 + 5, 38 + 6, 38 + 3 }).unsqueeze(0);   // [CLS] the of [SEP] as checkpoint ids
            Assert.True(trained.Classify(ids, null).allclose(((IClassifier)imported).Classify(ids, null), 0, 1e-6), "the exported classifier computes another function");
        }

        // That folder starts a finetune stage of another job whole: backbone, pooler and classifier.
        var copy = Path.Combine(dir.Path, "models", "bert-clf");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.EnumerateFiles(clfHf)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        var again = Spec[..Spec.IndexOf("  - name: mlm", StringComparison.Ordinal)].Replace("models/bert-tiny", "models/bert-clf") + """
              - name: clf
                kind: finetune
                inputs: {init: "hf:models/bert-clf"}
                objective: {kind: classification, task: genre}
                model: {family: bert, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, dropout: 0.0}
                data: {corpus: brown, seq_len: 16, max_examples: 32}
                train: {steps: 1, batch_size: 4, lr: 1.0e-7, warmup: 1}
            """;
        using var second = new TempDir();
        Directory.CreateDirectory(Path.Combine(second.Path, "models"));
        Directory.Move(copy, Path.Combine(second.Path, "models", "bert-clf"));
        Run(second.Path, again);
        var head = Safetensors.Read(new StageArtifacts(Path.Combine(second.Path, "runs"), "job", "clf").SafeTensors)["head.classifier.weight"];
        Assert.True(head.allclose(Safetensors.Read(Path.Combine(clfHf, "model.safetensors"))["classifier.weight"], 0, 1e-5), "the classifier head did not come from the checkpoint");
    }

    [Fact]
    public void An_electra_discriminator_starts_a_finetune_stage()
    {
        using var dir = new TempDir();
        var checkpoint = Path.Combine(dir.Path, "models", "electra-tiny");
        manual_seed(19);
        using (var model = new ElectraDiscriminator(new ElectraConfig
        {
            VocabSize = TokenizerSpec.SpecialIds + Words.Length, EmbeddingSize = 8, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32, MaxPositions = 16,
        }))
            HfElectra.Export(model, checkpoint, TokenizerSpec.SpecialIds, null);
        File.WriteAllLines(Path.Combine(checkpoint, "vocab.txt"), Words);
        var yaml = """
            name: hf-electra
            seed: 7
            tokenizer: {kind: files, path: models/electra-tiny}
            stages:
              - name: clf
                kind: finetune
                inputs: {init: "hf:models/electra-tiny"}
                objective: {kind: classification, task: genre}
                model: {family: electra, layers: 1, hidden: 16, heads: 2, ffn: 32, max_len: 16, embedding_size: 8, dropout: 0.0}
                data: {corpus: brown, seq_len: 16, max_examples: 32}
                train: {steps: 2, batch_size: 4, lr: 1.0e-7, warmup: 1}
            """;
        Run(dir.Path, yaml);
        var trained = Safetensors.Read(new StageArtifacts(Path.Combine(dir.Path, "runs"), "job", "clf").SafeTensors);
        var positions = trained.Single(kv => kv.Key.EndsWith("embeddings.position.weight")).Value;
        var source = Safetensors.Read(Path.Combine(checkpoint, "model.safetensors"))["electra.embeddings.position_embeddings.weight"];
        Assert.True(positions.allclose(source, 0, 1e-5), "the classifier's backbone did not start from the discriminator");
    }
}
