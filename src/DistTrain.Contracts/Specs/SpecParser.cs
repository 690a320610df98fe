using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace DistTrain.Contracts.Specs;

/// <summary>Turns a YAML job spec into a <see cref="JobSpec"/>: structure, types, names, defaults and model inheritance.</summary>
/// <remarks>
/// Reports unknown keys, wrong types and unknown names (kinds, families, objectives…) with their paths, all at once.
/// Semantic checks (ranges, shapes, the DAG) belong to <see cref="SpecValidator"/>; <see cref="JobSpecs.Load"/> runs both.
/// Never throws on bad input.
/// </remarks>
public static class SpecParser
{
    private static readonly string[] TopKeys = ["name", "seed", "priority", "tokenizer", "defaults", "stages"];
    private static readonly string[] TokenizerKeys = ["kind", "size", "path"];
    private static readonly string[] DefaultsKeys = ["model", "data", "train", "distributed"];
    private static readonly string[] StageKeys = ["name", "kind", "needs", "model", "objective", "data", "train", "inputs", "outputs", "distributed"];
    private static readonly string[] ModelKeys = ["family", "layers", "hidden", "heads", "ffn", "max_len", "vocab_size", "dropout", "embedding_size", "generator", "norm", "gelu"];
    private static readonly string[] GeneratorKeys = ["layers", "hidden", "heads", "ffn"];
    private static readonly string[] DataKeys = ["corpus", "path", "from", "split", "seq_len", "max_examples", "train_examples", "fields", "validation_fraction", "test_fraction"];
    private static readonly string[] SourceKeys = ["corpus", "path", "from"];
    private static readonly string[] TrainKeys = ["steps", "batch_size", "micro_batches", "lr", "warmup", "schedule", "weight_decay", "clip", "eval_every", "checkpoint_every", "seed", "freeze_backbone"];
    private static readonly string[] InputKeys = ["init", "teacher", "reference", "labels"];
    private static readonly string[] OutputKeys = ["keep_checkpoints", "soft_labels", "metrics", "export"];
    private static readonly string[] DistributedKeys = ["workers", "aggregation", "wire", "checksum_every", "max_restarts", "gradient_bucket_mb"];
    private static readonly string[] WorkerKeys = ["min", "max"];

    /// <summary>Keys each objective accepts, <c>kind</c> included.</summary>
    private static IReadOnlyList<string> ObjectiveKeys(ObjectiveKind kind) => ObjectiveDescriptors.Of(kind).Keys;

    /// <summary>Reads and parses a spec file, refusing files over <see cref="SpecLimits.MaxSpecBytes"/> before reading them.</summary>
    public static SpecResult ParseFile(string path)
    {
        var (yaml, failure) = ReadFile(path);
        return failure ?? Parse(yaml!);
    }

    /// <summary>A spec file's text, or (text null) the result that says why it cannot be read: missing, over the size limit, unreadable.</summary>
    public static (string? Yaml, SpecResult? Failure) ReadFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) return (null, Fail($"file '{path}' does not exist"));
            if (info.Length > SpecLimits.MaxSpecBytes) return (null, TooBig(info.Length));
            return (File.ReadAllText(path, Encoding.UTF8), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return (null, Fail($"cannot read '{path}': {e.Message}"));
        }
    }

    /// <summary>Parses spec text. On any error the spec is null and the errors say where and why.</summary>
    public static SpecResult Parse(string yaml)
    {
        long bytes = Encoding.UTF8.GetByteCount(yaml);
        if (bytes > SpecLimits.MaxSpecBytes) return TooBig(bytes);
        YamlStream stream;
        try
        {
            if (Prescan(yaml) is { } problem) return Fail(problem);
            stream = new YamlStream();
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            return Fail($"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {FirstLine(e.Message)}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or IndexOutOfRangeException)
        {
            // YamlDotNet's scanner throws these, without a position, on some malformed input (e.g. an unclosed
            // flow sequence holding `key: value`; upstream aaubry/YamlDotNet#541). Still the user's YAML, so say so.
            return Fail("invalid YAML (the YAML parser gave no position; look for an unclosed bracket or quote)");
        }
        try
        {
            if (stream.Documents.Count == 0 || YamlSections.IsNull(stream.Documents[0].RootNode))
                return Fail("the spec is empty");
            var reader = new YamlSections();
            var spec = ReadJob(reader, stream.Documents[0].RootNode);
            var errors = reader.Errors.Distinct().ToList();
            return new SpecResult(errors.Count == 0 ? spec : null, errors);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Bad input must never crash a submit; anything we did not foresee is still a reportable error.
            return Fail($"unreadable spec ({e.GetType().Name}: {FirstLine(e.Message)})");
        }
    }

    private static SpecResult Fail(string message) => new(null, [new SpecError("$", message)]);

    private static SpecResult TooBig(long bytes) =>
        Fail($"spec is {bytes} bytes; the limit is {SpecLimits.MaxSpecBytes}");

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Streams parser events before building the tree, so depth and aliases are bounded before any recursion.</summary>
    /// <remarks>
    /// Anchors and aliases are refused: they let a small file expand into a huge one, and <c>defaults</c> already
    /// covers sharing settings between stages.
    /// </remarks>
    private static string? Prescan(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        int depth = 0, documents = 0;
        // Every event consumes input, so more events than characters means the scanner is stuck; stop rather than spin.
        long budget = 4L * yaml.Length + 16;
        while (parser.MoveNext())
        {
            if (--budget < 0) return "invalid YAML (the YAML parser stopped making progress)";
            switch (parser.Current)
            {
                case AnchorAlias a:
                    return $"line {a.Start.Line}: anchors and aliases are not supported; use defaults to share settings";
                case NodeEvent { Anchor.IsEmpty: false } n:
                    return $"line {n.Start.Line}: anchors and aliases are not supported; use defaults to share settings";
                case DocumentStart:
                    if (++documents > 1) return "a spec is a single YAML document";
                    break;
            }
            if (parser.Current is MappingStart or SequenceStart)
            {
                if (++depth > SpecLimits.MaxDepth) return $"nesting deeper than {SpecLimits.MaxDepth} levels";
            }
            else if (parser.Current is MappingEnd or SequenceEnd)
            {
                depth--;
            }
        }
        return null;
    }

    private static JobSpec ReadJob(YamlSections r, YamlNode root)
    {
        var top = r.Map(new Entry(root, ""), TopKeys);
        if (top is null) return new JobSpec("", 0, 0, []);
        string name = r.Str(top, "name") ?? "";
        if (!top.ContainsKey("name")) r.Error("name", "required");
        int seed = r.Int(top, "seed") ?? 0;
        int priority = r.Int(top, "priority") ?? 0;
        var tokenizer = top.TryGetValue("tokenizer", out var tk) ? ReadTokenizer(r, tk) : null;

        var defaults = top.TryGetValue("defaults", out var d) ? r.Map(d, DefaultsKeys) : null;
        var defaultSections = DefaultsKeys.ToDictionary(
            k => k,
            k => defaults is not null && defaults.TryGetValue(k, out var e) ? Section(r, e, k) : null);

        if (!top.TryGetValue("stages", out var stagesEntry))
        {
            r.Error("stages", "required: a job has at least one stage");
            return new JobSpec(name, seed, priority, []);
        }
        if (stagesEntry.Node is not YamlSequenceNode seq)
        {
            r.Error("stages", $"must be a list, not {YamlSections.Describe(stagesEntry.Node)}");
            return new JobSpec(name, seed, priority, []);
        }
        if (seq.Children.Count > SpecLimits.MaxStages)
        {
            r.Error("stages", $"{seq.Children.Count} stages; the limit is {SpecLimits.MaxStages}");
            return new JobSpec(name, seed, priority, []);
        }

        var raws = new List<RawStage>();
        for (int i = 0; i < seq.Children.Count; i++)
            raws.Add(ReadRaw(r, new Entry(seq.Children[i], $"stages[{i}]")));

        // Models are inherited along init (or a label stage's teacher), so resolve in dependency order. Stages
        // stuck in a cycle come last, in file order, and report that they cannot inherit.
        var order = StageGraph.Order(raws.Select(s => (s.Name, (IReadOnlyList<string>)s.Deps)).ToList());
        order.AddRange(Enumerable.Range(0, raws.Count).Except(order));
        var models = new Dictionary<string, Entry>?[raws.Count];
        var stages = new StageSpec?[raws.Count];
        foreach (int i in order)
        {
            var raw = raws[i];
            // An hf: init inherits no stage's model: JobSpecs.Load fills what the stage does not write from config.json.
            string? baseName = raw.Inputs.HfInit is not null ? null : raw.Inputs.Init ?? (raw.Kind == StageKind.Label ? raw.Inputs.Teacher : null);
            int baseIndex = baseName is null ? -1 : raws.FindIndex(s => s.Name == baseName);
            string baseKey = YamlSections.Join(raw.Path, raw.Inputs.Init is not null ? "inputs.init" : "inputs.teacher");
            if (baseName is not null && baseIndex < 0)
                r.Error(baseKey, $"no stage named '{baseName}'");
            else if (baseIndex >= 0 && models[baseIndex] is null)
                r.Error(baseKey, $"cannot inherit the model of '{baseName}': it is part of a dependency cycle");
            var inherited = baseIndex >= 0 ? models[baseIndex] : defaultSections["model"];
            models[i] = YamlSections.Merge(inherited, raw.Own.GetValueOrDefault("model"));
            stages[i] = BuildStage(r, raw, models[i]!, defaultSections, inheritsModel: baseName is not null, tokenizer);
        }
        return new JobSpec(name, seed, priority, stages.Select(s => s!).ToList(), tokenizer);
    }

    /// <summary>A section mapping read with its allowed keys, or null when absent or malformed.</summary>
    private static Dictionary<string, Entry>? Section(YamlSections r, Entry e, string key) => key switch
    {
        "model" => r.Map(e, ModelKeys),
        "data" => r.Map(e, DataKeys),
        "train" => r.Map(e, TrainKeys),
        "distributed" => r.Map(e, DistributedKeys),
        "inputs" => r.Map(e, InputKeys),
        "outputs" => r.Map(e, OutputKeys),
        _ => null,
    };

    /// <summary>What is known about a stage before models are resolved: enough to order stages.</summary>
    private sealed record RawStage(
        string Path, string Name, StageKind Kind, bool KindOk, List<string> Needs, InputsSpec Inputs,
        Dictionary<string, Entry> Stage, Dictionary<string, Dictionary<string, Entry>?> Own, List<string> Deps);

    private static RawStage ReadRaw(YamlSections r, Entry entry)
    {
        var stage = r.Map(entry, StageKeys) ?? [];
        string path = entry.Path;
        string name = r.Str(stage, "name") ?? "";
        if (!stage.ContainsKey("name")) r.Error(YamlSections.Join(path, "name"), "required");
        StageKind? kind = r.Enum<StageKind>(stage, "kind");
        if (!stage.ContainsKey("kind")) r.Error(YamlSections.Join(path, "kind"), "required");
        var needs = r.List(stage, "needs", r.ScalarItem) ?? [];

        var own = new Dictionary<string, Dictionary<string, Entry>?>();
        foreach (var key in new[] { "model", "data", "train", "distributed", "inputs", "outputs" })
            own[key] = stage.TryGetValue(key, out var e) ? Section(r, e, key) : null;

        var i = own["inputs"];
        var inputs = new InputsSpec(r.Str(i, "init"), r.Str(i, "teacher"), r.Str(i, "reference"), r.Str(i, "labels"));
        var deps = new List<string>(needs);
        deps.AddRange(inputs.Named().Select(n => n.Stage));
        if (r.Str(own["data"], "from") is { } from) deps.Add(from);
        return new RawStage(path, name, kind ?? StageKind.Pretrain, kind is not null, needs, inputs, stage, own, deps);
    }

    /// <summary>
    /// The job's <c>tokenizer:</c> section: <c>gpt2</c>, <c>subvocab</c> (optionally <c>{kind: subvocab, size: N}</c>) or
    /// <c>{kind: files, path: DIR}</c>.
    /// </summary>
    private static TokenizerSpec? ReadTokenizer(YamlSections r, Entry e)
    {
        if (e.Node is YamlScalarNode)
        {
            if (r.Enum<TokenizerKind>(e) is not { } k) return null;
            if (k == TokenizerKind.Files) r.Error(e.Path, "files needs a path: write {kind: files, path: DIR}");
            return new TokenizerSpec(k);
        }
        var t = r.Map(e, TokenizerKeys);
        if (t is null) return null;
        if (!t.ContainsKey("kind")) { r.Error(YamlSections.Join(e.Path, "kind"), "required: one of " + string.Join(", ", SpecNames.All<TokenizerKind>())); return null; }
        if (r.Enum<TokenizerKind>(t, "kind") is not { } kind) return null;
        int? size = r.Int(t, "size");
        string? path = r.Str(t, "path");
        if (size is not null && kind != TokenizerKind.Subvocab) r.Error(YamlSections.Join(e.Path, "size"), $"only a subvocab is sized; {SpecNames.Of(kind)} has the size of its vocabulary");
        if (path is not null && kind != TokenizerKind.Files) r.Error(YamlSections.Join(e.Path, "path"), $"only files tokenizers are read from a path");
        if (path is null && kind == TokenizerKind.Files) r.Error(YamlSections.Join(e.Path, "path"), "required for files: a folder with vocab.json and merges.txt, a tokenizer.json, or a folder with a WordPiece vocab.txt, under the data root");
        return new TokenizerSpec(kind, size, path);
    }

    private static StageSpec BuildStage(
        YamlSections r, RawStage raw, Dictionary<string, Entry> modelSection,
        Dictionary<string, Dictionary<string, Entry>?> defaults, bool inheritsModel, TokenizerSpec? tokenizer)
    {
        string path = raw.Path;
        var model = ReadModel(r, modelSection, YamlSections.Join(path, "model"), inheritsModel, tokenizer, raw.Inputs.HfInit);
        var objective = ReadObjective(r, raw, model);

        // A stage that names any data source replaces the default source whole; `inputs.labels` counts as naming one.
        var ownData = raw.Own["data"];
        bool ownSource = ownData is not null && SourceKeys.Any(ownData.ContainsKey);
        var inheritedData = defaults["data"] is { } dd && (ownSource || raw.Inputs.Labels is not null)
            ? dd.Where(kv => !SourceKeys.Contains(kv.Key)).ToDictionary()
            : defaults["data"];
        var data = ReadData(r, YamlSections.Merge(inheritedData, ownData), YamlSections.Join(path, "data"), raw, model);
        // BERT's and ALBERT's sentence-pair tasks need documents cut into sentences, which only the built-in corpora
        // have: on the user's own text their default is plain MLM (RoBERTa's recipe, and Hugging Face's run_mlm).
        if (data.Source is CorpusFile && !raw.Stage.ContainsKey("objective") && objective is MlmSpec { SentenceTask: not SentenceTask.None })
            objective = new MlmSpec();

        var train = ReadTrain(r, YamlSections.Merge(defaults["train"], raw.Own["train"]));
        var outputs = ReadOutputs(r, raw.Own["outputs"]);
        var distributed = ReadDistributed(r, YamlSections.Merge(defaults["distributed"], raw.Own["distributed"]));
        return new StageSpec(raw.Name, raw.Kind, raw.Needs, model, objective, data, train, raw.Inputs, outputs, distributed);
    }

    private static ModelSpec ReadModel(YamlSections r, Dictionary<string, Entry> m, string path, bool inheritsModel, TokenizerSpec? tokenizer, string? hfInit)
    {
        // A stage with an hf: init reaches here with its model section filled from config.json (HfModelSections) when
        // the spec was loaded with the data root; without it, the fields config.json would give are missing.
        string missing = hfInit is null ? "required"
            : $"required: written, or read from config.json of {InputsSpec.HfPrefix}{hfInit}, which needs the data root (disttrain run/submit read it)";
        if (m.Count == 0)
        {
            // An unresolvable init/teacher was reported where it is named; do not pile a second error on it.
            if (hfInit is not null) r.Error(path, missing);
            else if (!inheritsModel) r.Error(path, "required (no defaults.model, and no inputs.init to inherit from)");
            return new ModelSpec(ModelFamily.Bert, 1, 1, 1, 4, 1, 8);
        }
        var family = r.Enum<ModelFamily>(m, "family");
        int Required(string key)
        {
            if (!m.ContainsKey(key))
                r.Error(YamlSections.Join(path, key), hfInit is not null && key == "max_len" && family is { } f && f.HasRelativePositions()
                    ? $"required: {SpecNames.Of(f)} has relative positions, so config.json gives no max_len; write the longest sequence this stage reads"
                    : missing);
            return r.Int(m, key) ?? 0;
        }
        if (!m.ContainsKey("family")) r.Error(YamlSections.Join(path, "family"), missing);
        int layers = Required("layers"), hidden = Required("hidden"), heads = Required("heads");
        int maxLen = Required("max_len");
        // A declared tokenizer fixes the vocabulary, so vocab_size may be left out: the tokenizer's size (known here for
        // gpt2 and a sized subvocab; 0 until its files are read for a files tokenizer).
        int vocab = tokenizer is null ? Required("vocab_size") : r.Int(m, "vocab_size") ?? tokenizer.KnownSize ?? 0;
        int ffn = r.Int(m, "ffn") ?? 4 * hidden;
        double dropout = r.Num(m, "dropout") ?? 0.1;
        int? embedding = r.Int(m, "embedding_size");
        var norm = r.Enum<LayerNormPosition>(m, "norm");
        var gelu = r.Enum<GeluForm>(m, "gelu");

        GeneratorSpec? generator = null;
        if (m.TryGetValue("generator", out var g) && r.Map(g, GeneratorKeys) is { } gm)
        {
            int gHidden = r.Int(gm, "hidden") ?? 0;
            if (!gm.ContainsKey("hidden")) r.Error(YamlSections.Join(g.Path, "hidden"), "required");
            int gHeads = r.Int(gm, "heads") ?? 0;
            if (!gm.ContainsKey("heads")) r.Error(YamlSections.Join(g.Path, "heads"), "required");
            // Same depth as the discriminator by default, as in the ELECTRA paper; width is what shrinks.
            generator = new GeneratorSpec(r.Int(gm, "layers") ?? layers, gHidden, gHeads, r.Int(gm, "ffn") ?? 4 * gHidden);
        }
        return new ModelSpec(family ?? ModelFamily.Bert, layers, hidden, heads, ffn, maxLen, vocab, dropout, embedding, generator, norm, gelu);
    }

    private static ObjectiveSpec? ReadObjective(YamlSections r, RawStage raw, ModelSpec model)
    {
        string path = YamlSections.Join(raw.Path, "objective");
        if (!raw.Stage.TryGetValue("objective", out var e))
        {
            if (!raw.KindOk) return null;
            if (raw.Kind == StageKind.Finetune)
            {
                r.Error(path, $"required: finetune needs {{kind: classification, task: {Tasks}}}");
                return null;
            }
            return DefaultObjective(raw.Kind, model.Family);
        }
        if (e.Node is YamlScalarNode)
        {
            if (r.Enum<ObjectiveKind>(e) is not { } k) return null;
            if (k == ObjectiveKind.Classification)
            {
                r.Error(path, $"classification needs a task: write {{kind: classification, task: {Tasks}}}");
                return null;
            }
            return Build(k, null);
        }
        if (e.Node is not YamlMappingNode mapping)
        {
            r.Error(path, $"must be an objective name or a mapping, not {YamlSections.Describe(e.Node)}");
            return null;
        }
        // Read `kind` first: it decides which other keys are legal.
        var kindNode = mapping.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode { Value: "kind" }).Value;
        if (kindNode is null || YamlSections.IsNull(kindNode))
        {
            r.Error(YamlSections.Join(path, "kind"), "required");
            return null;
        }
        if (r.Enum<ObjectiveKind>(new Entry(kindNode, YamlSections.Join(path, "kind"))) is not { } kind) return null;
        var o = r.Map(e, ObjectiveKeys(kind), $"objective '{SpecNames.Of(kind)}'");
        return o is null ? null : Build(kind, o);

        ObjectiveSpec? Build(ObjectiveKind kind, Dictionary<string, Entry>? o)
        {
            switch (kind)
            {
                case ObjectiveKind.Mlm:
                    return new MlmSpec(r.Num(o, "mask_prob") ?? 0.15, r.Enum<SentenceTask>(o, "sentence_task") ?? SentenceTask.None);
                case ObjectiveKind.Clm: return new ClmSpec();
                case ObjectiveKind.Rtd:
                    return new RtdSpec(r.Num(o, "mask_prob") ?? 0.15, r.Num(o, "discriminator_weight") ?? 50);
                case ObjectiveKind.Classification:
                    if (o is null || !o.ContainsKey("task"))
                    {
                        r.Error(YamlSections.Join(path, "task"), "required: one of " + string.Join(", ", SpecNames.All<ClassificationTask>()));
                        return null;
                    }
                    return r.Enum<ClassificationTask>(o, "task") is { } task ? new ClassificationSpec(task, r.Enum<SequencePooling>(o, "pooling")) : null;
                case ObjectiveKind.Sft: return new SftSpec();
                case ObjectiveKind.Reward: return new RewardSpec();
                case ObjectiveKind.Dpo: return new DpoSpec(r.Num(o, "beta") ?? 0.1);
                case ObjectiveKind.Distill:
                    return new DistillSpec(r.Num(o, "temperature") ?? 2.0, r.Num(o, "alpha") ?? 0.5,
                        r.Bool(o, "mse") ?? false, r.Num(o, "max_param_ratio"));
                case ObjectiveKind.Plm: return new PlmSpec(r.Int(o, "k") ?? 6);
                case ObjectiveKind.SpanCorruption:
                    return new SpanCorruptionSpec(r.Num(o, "noise_density") ?? 0.15, r.Num(o, "mean_span") ?? 3);
                default: return null;
            }
        }
    }

    private static string Tasks => string.Join("|", SpecNames.All<ClassificationTask>());

    /// <summary>The objective a stage gets when it names none; pretraining follows the family's original recipe.</summary>
    public static ObjectiveSpec? DefaultObjective(StageKind kind, ModelFamily family) => kind switch
    {
        StageKind.Pretrain => family switch
        {
            ModelFamily.Gpt => new ClmSpec(),
            ModelFamily.Electra => new RtdSpec(),
            ModelFamily.Bert => new MlmSpec(SentenceTask: SentenceTask.Nsp),
            ModelFamily.Albert => new MlmSpec(SentenceTask: SentenceTask.Sop),
            ModelFamily.Xlnet => new PlmSpec(),
            ModelFamily.T5 => new SpanCorruptionSpec(),
            _ => new MlmSpec(),
        },
        StageKind.Sft => new SftSpec(),
        StageKind.Reward => new RewardSpec(),
        StageKind.Dpo => new DpoSpec(),
        StageKind.Distill => new DistillSpec(),
        _ => null,
    };

    private static DataSpec ReadData(YamlSections r, Dictionary<string, Entry> d, string path, RawStage raw, ModelSpec model)
    {
        var given = SourceKeys.Where(d.ContainsKey).ToList();
        DataSource source = new BuiltinCorpus(CorpusName.Brown);
        if (given.Count > 1)
        {
            r.Error(path, $"give one data source, not {string.Join(" and ", given)}");
        }
        else if (given.Count == 0)
        {
            if (raw.Inputs.Labels is { } labels) source = new StageOutput(labels);
            else if (raw.KindOk) r.Error(path, "needs a source: corpus (brown|spam), path (under the data root) or from (a label stage)");
        }
        else if (given[0] == "corpus")
        {
            if (r.Enum<CorpusName>(d, "corpus") is { } c) source = new BuiltinCorpus(c);
        }
        else if (given[0] == "path")
        {
            source = new CorpusFile(r.Str(d, "path") ?? "");
        }
        else
        {
            source = new StageOutput(r.Str(d, "from") ?? "");
        }
        var split = r.Enum<DataSplit>(d, "split") ?? raw.Kind switch
        {
            StageKind.Label => DataSplit.All,   // a teacher labels the whole corpus
            StageKind.Evaluate => DataSplit.Test,
            _ => DataSplit.Train,
        };
        int seqLen = r.Int(d, "seq_len") ?? model.MaxLen;
        Dictionary<string, string>? fields = null;
        if (d.TryGetValue("fields", out var f) && r.Map(f, FieldKeys, "data.fields") is { } fm)
        {
            fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var key in fm.Keys)
                if (r.Str(fm, key) is { } column) fields[key] = column;
        }
        return new DataSpec(source, split, seqLen, r.Int(d, "max_examples"), r.Int(d, "train_examples"),
            fields, r.Num(d, "validation_fraction"), r.Num(d, "test_fraction"));
    }

    /// <summary>Keys of <c>data.fields</c>: every schema's field names; the validator checks them against the stage's own schema.</summary>
    private static readonly string[] FieldKeys = Enum.GetValues<RecordSchema>().SelectMany(RecordSchemas.Fields).Distinct().ToArray();

    private static TrainSpec ReadTrain(YamlSections r, Dictionary<string, Entry> t)
    {
        var x = new TrainSpec();
        return new TrainSpec(
            r.Int(t, "steps") ?? x.Steps,
            r.Int(t, "batch_size") ?? x.BatchSize,
            r.Int(t, "micro_batches") ?? x.MicroBatches,
            r.Num(t, "lr") ?? x.Lr,
            r.Int(t, "warmup") ?? x.Warmup,
            r.Enum<LrSchedule>(t, "schedule") ?? x.Schedule,
            r.Num(t, "weight_decay") ?? x.WeightDecay,
            r.Num(t, "clip") ?? x.Clip,
            r.Int(t, "eval_every") ?? x.EvalEvery,
            r.Int(t, "checkpoint_every") ?? x.CheckpointEvery,
            r.Int(t, "seed"),
            r.Bool(t, "freeze_backbone") ?? x.FreezeBackbone);
    }

    private static OutputsSpec ReadOutputs(YamlSections r, Dictionary<string, Entry>? o)
    {
        var x = new OutputsSpec();
        return new OutputsSpec(
            r.Int(o, "keep_checkpoints") ?? x.KeepCheckpoints,
            r.Bool(o, "soft_labels") ?? x.SoftLabels,
            r.Values(o, "metrics", e => r.Enum<Metric>(e)),
            r.Enum<ExportFormat>(o, "export"));
    }

    private static DistributedSpec ReadDistributed(YamlSections r, Dictionary<string, Entry> d)
    {
        var x = new DistributedSpec();
        int min = x.MinWorkers, max = x.MaxWorkers;
        if (d.TryGetValue("workers", out var w))
        {
            // `workers: 2` is shorthand for a fixed count; a range lets the cluster scale within it.
            if (w.Node is YamlScalarNode)
            {
                min = max = r.Int(w) ?? min;
            }
            else if (r.Map(w, WorkerKeys) is { } range)
            {
                min = r.Int(range, "min") ?? 1;
                if (!range.ContainsKey("max")) r.Error(YamlSections.Join(w.Path, "max"), "required");
                max = r.Int(range, "max") ?? min;
            }
        }
        return new DistributedSpec(
            min, max,
            r.Enum<Aggregation>(d, "aggregation") ?? x.Aggregation,
            r.Enum<WireFormat>(d, "wire") ?? x.Wire,
            r.Int(d, "checksum_every") ?? x.ChecksumEvery,
            r.Int(d, "max_restarts") ?? x.MaxRestarts,
            r.Num(d, "gradient_bucket_mb") ?? x.GradientBucketMb);
    }
}
