using System.Text.Json;
using DistTrain.Contracts.Specs;
using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// What a stage reads, resolved from its spec on this node: the job's tokenizer, the stage's examples
/// (<see cref="StageData"/>), and the classes of the models it builds on. A trained stage records its tokenizer and
/// classes beside its checkpoints, so label, distill, evaluate and export stages agree on them, and a checkpoint is
/// never loaded under another tokenizer.
/// </summary>
public static class StageInputs
{
    /// <summary>The examples <paramref name="stage"/> reads, tokenized with the job's tokenizer.</summary>
    /// <param name="classesOf">The trained classifier whose classes the labels map onto (label, distill and evaluate
    /// stages); null: this data's own (a fine-tuning stage's training labels).</param>
    public static StageData Data(JobSpec job, StageSpec stage, StageArtifacts artifacts, StageSpec? classesOf = null, IProgress<PrepareProgress>? progress = null)
    {
        var tokenizer = Tokenizer(job, stage, artifacts.DataRoot);
        var task = Lineage.TaskOf(job, stage);
        switch (stage.Data.Source)
        {
            case BuiltinCorpus:
            {
                // A built-in task's classes are fixed by the corpus, so a trained classifier's are the same ones.
                var brown = DataCatalog.Shared.Brown((ulong)job.Seed, tokenizer);
                return new BuiltinStageData(brown, task, () => DataCatalog.Shared.Spam((ulong)job.Seed));
            }
            case CorpusFile file:
            {
                var schema = Lineage.SchemaOf(job, stage) ?? throw new InvalidOperationException($"stage '{stage.Name}' reads no records of its own");
                var prepared = DataCatalog.Shared.Prepared(RootOf(artifacts.DataRoot, stage, file.Path), file.Path, schema, stage.Data, tokenizer, (ulong)job.Seed, progress);
                var classes = classesOf is null ? prepared.Labels : ClassesOfTrained(job, classesOf, artifacts);
                return new FileStageData(prepared, tokenizer, classes);
            }
            case StageOutput from:
                return Data(job, ObjectiveFactory.Required(job, from.Stage, stage, "data.from"), artifacts, classesOf ?? ObjectiveFactory.ClassifierRoot(job, stage), progress);
            default:
                throw new NotSupportedException($"stage '{stage.Name}': unknown data source {stage.Data.Source}");
        }
    }

    /// <summary>The tokenizer and classes a finished stage trained with, read from its stage folder.</summary>
    public static (ITextTokenizer Tokenizer, IReadOnlyList<string> Classes) OfTrained(JobSpec job, StageSpec stage, StageArtifacts artifacts)
    {
        var tokenizer = Tokenizer(job, stage, artifacts.DataRoot);
        var saved = artifacts.Of(stage.Name).Tokenizer;
        if (Directory.Exists(saved))
        {
            var identity = Tokenizers.Load(saved).Identity;
            if (identity != tokenizer.Identity)
                throw new InvalidOperationException($"stage '{stage.Name}' was trained with tokenizer {identity}, but this job's tokenizer is {tokenizer.Identity}; a checkpoint loads only under its own tokenizer");
        }
        bool classifier = Lineage.TaskOf(job, stage) is not null && stage.Kind is StageKind.Finetune or StageKind.Distill;
        return (tokenizer, classifier ? ClassesOfTrained(job, stage, artifacts) : []);
    }

    /// <summary>The classes of a trained classifier: its <c>classes.json</c>, else (runs from before it was written) its built-in task's.</summary>
    public static IReadOnlyList<string> ClassesOfTrained(JobSpec job, StageSpec classifier, StageArtifacts artifacts)
    {
        var root = ObjectiveFactory.ClassifierRoot(job, classifier);
        foreach (var s in new[] { classifier, root })
        {
            var path = artifacts.Of(s.Name).Classes;
            if (File.Exists(path))
            {
                try { return JsonSerializer.Deserialize<string[]>(File.ReadAllText(path)) ?? throw new JsonException("null"); }
                catch (JsonException e) { throw new InvalidDataException($"{path}: unreadable class list ({e.Message})"); }
            }
        }
        if (root.Data.Source is BuiltinCorpus)
            return Data(job, root, artifacts).Classes;
        throw new InvalidOperationException($"stage '{root.Name}' has no {Path.GetFileName(artifacts.Of(root.Name).Classes)}; it must finish before this stage");
    }

    /// <summary>Writes the tokenizer and the class list beside a training stage's checkpoints (idempotent: every rank may call it).</summary>
    public static void Record(StageArtifacts artifacts, StageData data)
    {
        Directory.CreateDirectory(artifacts.Directory);
        string identity = data.Tokenizer.Identity;
        if (IdentityAt(artifacts.Tokenizer) != identity)
        {
            // Written aside and renamed, and a published directory is never deleted in place (a recursive delete is not
            // atomic): every rank may get here at once, and a rank reading the directory sees a whole tokenizer or none.
            var temp = artifacts.Tokenizer + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
            data.Tokenizer.Save(temp);
            try { Directory.Move(temp, artifacts.Tokenizer); }
            catch (IOException) when (Directory.Exists(artifacts.Tokenizer))
            {
                if (IdentityAt(artifacts.Tokenizer) == identity) Directory.Delete(temp, recursive: true);   // another rank wrote the same files first
                else
                {
                    // A different tokenizer from an earlier run of this stage: moved aside whole, then replaced.
                    var stale = artifacts.Tokenizer + ".old-" + Guid.NewGuid().ToString("N")[..8];
                    Directory.Move(artifacts.Tokenizer, stale);
                    Directory.Move(temp, artifacts.Tokenizer);
                    Directory.Delete(stale, recursive: true);
                }
            }
        }
        if (data.Classes.Count > 0)
        {
            var json = JsonSerializer.Serialize(data.Classes);
            if (!File.Exists(artifacts.Classes) || File.ReadAllText(artifacts.Classes) != json)
            {
                var temp = artifacts.Classes + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
                File.WriteAllText(temp, json);
                File.Move(temp, artifacts.Classes, overwrite: true);
            }
        }
    }

    /// <summary>The identity of the tokenizer saved in <paramref name="directory"/>, or null when none (or only part of one) is there.</summary>
    private static string? IdentityAt(string directory)
    {
        if (!Directory.Exists(directory)) return null;
        try { return Tokenizers.Load(directory).Identity; }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; }
    }

    /// <summary>The job's tokenizer as <paramref name="stage"/> uses it (a sub-vocabulary takes the stage's vocab_size unless the job sizes it).</summary>
    public static ITextTokenizer Tokenizer(JobSpec job, StageSpec stage, string? dataRoot)
    {
        var spec = job.TokenizerOrDefault;
        switch (spec.Kind)
        {
            case TokenizerKind.Gpt2:
                return Tokenizers.Gpt2();
            case TokenizerKind.Files:
                return DataCatalog.Shared.TokenizerFiles(Resolve(dataRoot, "tokenizer.path", spec.Path!));
            default:
                int size = spec.Size ?? stage.Model.VocabSize;
                var source = VocabularySource(job);
                if (source?.Data.Source is CorpusFile file)
                {
                    var schema = Lineage.SchemaOf(job, source) ?? RecordSchema.Text;
                    return DataCatalog.Shared.Subvocabulary(RootOf(dataRoot, source, file.Path), file.Path, schema, source.Data, size, (ulong)job.Seed);
                }
                return DataCatalog.Shared.Brown((ulong)job.Seed, size).Vocabulary;
        }
    }

    /// <summary>
    /// The stage whose training data a sub-vocabulary is built from: the first training stage, in dependency order, that
    /// reads a corpus or a file. Built-in corpora build it from Brown's training split, as they always have.
    /// </summary>
    public static StageSpec? VocabularySource(JobSpec job) =>
        StageGraph.TopologicalOrder(job).FirstOrDefault(s => s.Kind.Trains() && s.Data.Source is BuiltinCorpus or CorpusFile);

    private static string RootOf(string? dataRoot, StageSpec stage, string path) =>
        dataRoot ?? throw new InvalidOperationException(
            $"stage '{stage.Name}' reads data.path '{path}', but this process has no data root: give `disttrain run --data-root DIR`, or set DISTTRAIN_DATA_ROOT on the node");

    private static string Resolve(string? dataRoot, string key, string relative)
    {
        if (dataRoot is null)
            throw new InvalidOperationException($"{key} '{relative}' needs a data root: give `disttrain run --data-root DIR`, or set DISTTRAIN_DATA_ROOT on the node");
        return DataPaths.Resolve(dataRoot, relative, out var problem) ?? throw new InvalidOperationException($"{key} '{relative}' {problem}");
    }
}
