using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>The spec side of users' own data: the tokenizer section, data.fields and held-out fractions, the tasks and
/// schemas files may hold, paths checked on disk, and the objective table the docs show.</summary>
public sealed class OwnDataSpecTests
{
    private const string Gpt = "{family: gpt, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32}";
    private const string Bert = "{family: bert, layers: 1, hidden: 32, heads: 2, ffn: 64, max_len: 32}";

    private static string Job(string stages, string tokenizer = "") => $"name: t\n{tokenizer}stages:\n{stages}";
    private static string Pre(string model, string data, string extra = "") =>
        $"  - {{name: p, kind: pretrain, model: {model}, data: {data}, train: {{steps: 2}}{extra}}}\n";

    private static void Fails(string yaml, string path, string fragment, string? dataRoot = null)
    {
        var result = JobSpecs.Load(yaml, dataRoot);
        Assert.False(result.Ok, "expected an error");
        Assert.Contains(result.Errors, e => e.Path == path && e.Message.Contains(fragment));
    }

    [Fact]
    public void A_declared_tokenizer_sizes_the_vocabulary_so_vocab_size_may_be_left_out()
    {
        var gpt2 = JobSpecs.Load(Job(Pre(Gpt, "{path: c.jsonl}"), "tokenizer: gpt2\n"));
        Assert.True(gpt2.Ok, string.Join("\n", gpt2.Errors));
        Assert.Equal(TokenizerKind.Gpt2, gpt2.Spec!.Tokenizer!.Kind);
        Assert.Equal(TokenizerSpec.Gpt2Size, gpt2.Spec.Stages[0].Model.VocabSize);

        var sized = JobSpecs.Load(Job(Pre(Gpt, "{path: c.jsonl}"), "tokenizer: {kind: subvocab, size: 4096}\n")).Spec!;
        Assert.Equal(4096, sized.Stages[0].Model.VocabSize);

        var files = JobSpecs.Load(Job(Pre(Gpt, "{path: c.jsonl}"), "tokenizer: {kind: files, path: tok}\n"));
        Assert.True(files.Ok, string.Join("\n", files.Errors));
        Assert.Equal(0, files.Spec!.Stages[0].Model.VocabSize);   // known once the files are read
        Assert.Equal(TokenizerSpec.Default, JobSpecs.Load(Job(Pre(Gpt.Replace("}", ", vocab_size: 512}"), "{corpus: brown}"))).Spec!.TokenizerOrDefault);
    }

    public static TheoryData<string, string, string, string> BadTokenizers() => new()
    {
        { "files without a path", "tokenizer: files\n", "tokenizer", "files needs a path" },
        { "a subvocab too small", "tokenizer: {kind: subvocab, size: 100}\n", "tokenizer.size", "must be > 294" },
        { "gpt2 is not sized", "tokenizer: {kind: gpt2, size: 1000}\n", "tokenizer.size", "only a subvocab is sized" },
        { "unknown kind", "tokenizer: {kind: sentencepiece}\n", "tokenizer.kind", "must be one of subvocab, gpt2, files" },
        { "a path for gpt2", "tokenizer: {kind: gpt2, path: x}\n", "tokenizer.path", "only files tokenizers are read from a path" },
        { "an escaping path", "tokenizer: {kind: files, path: ../tok}\n", "tokenizer.path", "'..'" },
        { "unknown key", "tokenizer: {kind: gpt2, vocab: 3}\n", "tokenizer.vocab", "unknown key" },
    };

    [Theory]
    [MemberData(nameof(BadTokenizers))]
    public void A_bad_tokenizer_section_is_reported_at_its_path(string name, string tokenizer, string path, string fragment)
    {
        _ = name;
        Fails(Job(Pre(Gpt, "{path: c.jsonl}"), tokenizer), path, fragment);
    }

    [Fact]
    public void A_vocab_size_other_than_the_tokenizers_is_an_error_naming_both()
    {
        Fails(Job(Pre(Gpt.Replace("}", ", vocab_size: 8192}"), "{path: c.jsonl}"), "tokenizer: gpt2\n"),
            "stages[0].model.vocab_size", "8192 differs from the gpt2 tokenizer's 50295 ids");
    }

    [Fact]
    public void Fields_and_fractions_apply_to_files_of_the_users_own_and_to_its_schema()
    {
        var ok = JobSpecs.Load(Job(Pre(Gpt.Replace("}", ", vocab_size: 512}"), "{path: c.jsonl, fields: {text: body}, validation_fraction: 0.01, test_fraction: 0.02}")));
        Assert.True(ok.Ok, string.Join("\n", ok.Errors));
        var d = ok.Spec!.Stages[0].Data;
        Assert.Equal(("body", 0.01, 0.02), (d.Fields!["text"], d.ValidationFraction!.Value, d.TestFraction!.Value));

        string gpt = Gpt.Replace("}", ", vocab_size: 512}");
        Fails(Job(Pre(gpt, "{path: c.jsonl, fields: {label: cat}}")), "stages[0].data.fields.label", "not a field of the text schema this stage reads (text)");
        Fails(Job(Pre(gpt, "{path: c.jsonl, fields: {colour: x}}")), "stages[0].data.fields.colour", "unknown key for data.fields");
        Fails(Job(Pre(gpt, "{corpus: brown, fields: {text: body}}")), "stages[0].data.fields", "applies to files of your own");
        Fails(Job(Pre(gpt, "{corpus: brown, test_fraction: 0.1}")), "stages[0].data.test_fraction", "applies to files of your own");
        Fails(Job(Pre(gpt, "{path: c.jsonl, validation_fraction: 1.5}")), "stages[0].data.validation_fraction", "must be >= 0 and < 1");
        Fails(Job(Pre(gpt, "{path: c.jsonl, validation_fraction: 0.6, test_fraction: 0.5}")), "stages[0].data.validation_fraction", "sum < 1");
    }

    [Fact]
    public void Tasks_match_their_source_built_in_tasks_on_the_corpora_and_sequence_or_token_on_files()
    {
        string bert = Bert.Replace("}", ", vocab_size: 512}");
        string Finetune(string task, string data) => $"  - {{name: f, kind: finetune, model: {bert}, objective: {{kind: classification, task: {task}}}, data: {data}, train: {{steps: 2}}}}\n";
        Assert.True(JobSpecs.Load(Job(Finetune("sequence", "{path: labelled.jsonl}"))).Ok);
        Assert.True(JobSpecs.Load(Job(Finetune("token", "{path: tagged/}"))).Ok);
        Fails(Job(Finetune("sequence", "{corpus: brown}")), "stages[0].objective.task", "'sequence' reads your own files (data.path); the brown corpus is labelled for genre, pos");
        Fails(Job(Finetune("genre", "{path: labelled.jsonl}")), "stages[0].objective.task", "'genre' is labelled only in the built-in brown corpus; for your own labelled files use task: sequence");
        Fails(Job(Finetune("pos", "{path: tagged/}")), "stages[0].objective.task", "use task: token");
    }

    [Fact]
    public void On_own_text_bert_defaults_to_plain_mlm_and_an_explicit_sentence_task_is_refused()
    {
        string bert = Bert.Replace("}", ", vocab_size: 512}");
        var spec = JobSpecs.Load(Job(Pre(bert, "{path: c.txt}"))).Spec!;
        Assert.Equal(new MlmSpec(), spec.Stages[0].Objective);
        Assert.Equal(new MlmSpec(SentenceTask: SentenceTask.Nsp), JobSpecs.Load(Job(Pre(bert, "{corpus: brown}"))).Spec!.Stages[0].Objective);
        Fails(Job(Pre(bert, "{path: c.txt}", ", objective: {kind: mlm, sentence_task: nsp}")), "stages[0].objective.sentence_task", "only the built-in corpora have");
    }

    [Fact]
    public void With_a_data_root_a_path_must_exist_and_a_globs_folder_too()
    {
        var root = Directory.CreateTempSubdirectory("own-data-spec-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "corpus"));
            File.WriteAllText(Path.Combine(root, "corpus", "a.jsonl"), "{\"text\": \"x\"}\n");
            string gpt = Gpt.Replace("}", ", vocab_size: 512}");
            Assert.True(JobSpecs.Load(Job(Pre(gpt, "{path: corpus/a.jsonl}")), root).Ok);
            Assert.True(JobSpecs.Load(Job(Pre(gpt, "{path: corpus}")), root).Ok);
            Assert.True(JobSpecs.Load(Job(Pre(gpt, "{path: 'corpus/*.jsonl'}")), root).Ok);
            Fails(Job(Pre(gpt, "{path: corpus/b.jsonl}")), "stages[0].data.path", "'corpus/b.jsonl' does not exist under the data root", root);
            Fails(Job(Pre(gpt, "{path: 'other/*.jsonl'}")), "stages[0].data.path", "the folder 'other' does not exist under the data root", root);
            Fails(Job(Pre(gpt, "{path: corpus}"), "tokenizer: {kind: files, path: tok}\n"), "tokenizer.path", "'tok' does not exist under the data root", root);
            // Without a root only lexical checks apply: the same spec is valid.
            Assert.True(JobSpecs.Load(Job(Pre(gpt, "{path: corpus/b.jsonl}"))).Ok);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void Every_objective_has_one_descriptor_and_the_docs_table_matches_it_keys_stage_kinds_and_families()
    {
        Assert.Equal(Enum.GetValues<ObjectiveKind>().Order(), ObjectiveDescriptors.All.Select(d => d.Kind).Order());
        var doc = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "docs", "spec-reference.md"))
            .SkipWhile(l => l != "## objective").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal)).ToList();
        foreach (var d in ObjectiveDescriptors.All)
        {
            var row = doc.SingleOrDefault(l => l.StartsWith($"| `{SpecNames.Of(d.Kind)}` |", StringComparison.Ordinal));
            Assert.True(row is not null, $"docs/spec-reference.md has no objective row for {SpecNames.Of(d.Kind)}");
            var cells = row!.Split(" | ");
            Assert.Equal(string.Join(", ", d.StageKinds.Select(SpecNames.Of)), cells[2].Trim());
            foreach (var key in d.Keys.Where(k => k != "kind")) Assert.Contains($"`{key}`", cells[1]);
            string families = d.Families.Count == Enum.GetValues<ModelFamily>().Length ? "any"
                : d.Families.All(f => f.IsEncoder() && !f.HasRelativePositions()) && d.Families.Count > 1 ? "encoders"
                : string.Join(", ", d.Families.Select(SpecNames.Of));
            Assert.StartsWith(families, cells[3].Trim());
        }
    }
}
