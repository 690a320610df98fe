using System.Text.RegularExpressions;

namespace DistTrain.Contracts.Specs;

/// <summary>Semantic checks on a parsed (or hand-built) <see cref="JobSpec"/>; returns every problem, never throws.</summary>
/// <remarks>
/// Runs the same on the CLI and on the cluster, so a spec that validates locally is accepted on submit.
/// Only <paramref name="dataRoot"/>-dependent checks (symlinks) touch the file system, and only when a root is given.
/// </remarks>
public static partial class SpecValidator
{
    [GeneratedRegex("^[a-z0-9][a-z0-9_-]*$")]
    private static partial Regex NamePattern();

    /// <summary>All problems with <paramref name="spec"/>; empty means the scheduler can run it.</summary>
    /// <param name="dataRoot">If given, <c>data.path</c> values are also resolved on disk and must stay under it through symlinks.</param>
    public static IReadOnlyList<SpecError> Validate(JobSpec spec, string? dataRoot = null)
    {
        var v = new Checks(spec, dataRoot);
        v.Job();
        return v.Errors.Distinct().ToList();
    }

    private sealed class Checks(JobSpec spec, string? dataRoot)
    {
        public List<SpecError> Errors { get; } = [];

        private void Error(string path, string message) => Errors.Add(new SpecError(path, message));

        private StageSpec? Find(string name) => spec.Stages.FirstOrDefault(s => s.Name == name);

        public void Job()
        {
            CheckName("name", spec.Name);
            if (spec.Seed < 0) Error("seed", "must be >= 0");
            if (spec.Priority is < 0 or > SpecLimits.MaxPriority) Error("priority", $"must be between 0 and {SpecLimits.MaxPriority}");
            if (spec.Stages.Count == 0) Error("stages", "a job has at least one stage");
            if (spec.Stages.Count > SpecLimits.MaxStages)
            {
                // Checking an oversized job stage by stage would only bury this error (and the DFS is recursive).
                Error("stages", $"{spec.Stages.Count} stages; the limit is {SpecLimits.MaxStages}");
                return;
            }

            var firstIndex = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < spec.Stages.Count; i++)
            {
                var s = spec.Stages[i];
                if (!firstIndex.TryAdd(s.Name, i))
                    Error($"stages[{i}].name", $"duplicate of stages[{firstIndex[s.Name]}].name ('{s.Name}')");
            }
            Tokenizer();
            for (int i = 0; i < spec.Stages.Count; i++) Stage(i, spec.Stages[i]);

            var nodes = spec.Stages.Select(s => (s.Name, s.Dependencies())).ToList();
            // A stage naming itself is already reported where it does so; only longer cycles need a report here.
            foreach (var cycle in StageGraph.FindCycles(nodes).Where(c => c.Count > 2))
                Error($"stages[{firstIndex[cycle[0]]}]", $"dependency cycle: {string.Join(" -> ", cycle)}");
        }

        /// <summary>The job's tokenizer section, and every stage's vocabulary against it.</summary>
        private void Tokenizer()
        {
            if (spec.Tokenizer is not { } t) return;
            if (!Enum.IsDefined(t.Kind)) Error("tokenizer.kind", "unknown tokenizer kind");
            if (t.Size is { } size)
            {
                if (size <= ModelFamilies.ReservedTokenIds)
                    Error("tokenizer.size", $"must be > {ModelFamilies.ReservedTokenIds}: a subvocab reserves {ModelFamilies.ReservedTokenIds} ids (38 special tokens and 256 byte tokens)");
                else if (size > SpecLimits.MaxVocab) Error("tokenizer.size", $"must be <= {SpecLimits.MaxVocab}");
            }
            if (t.Path is { } path) DataPath("tokenizer.path", path);
            if (t.KnownSize is not { } known) return;
            for (int i = 0; i < spec.Stages.Count; i++)
                if (spec.Stages[i].Model.VocabSize != known)
                    Error($"stages[{i}].model.vocab_size", $"{spec.Stages[i].Model.VocabSize} differs from the {SpecNames.Of(t.Kind)} tokenizer's {known} ids; omit vocab_size to take the tokenizer's");
        }

        /// <summary>A path under the data root: lexically safe always; with a root, resolved through symlinks and present.</summary>
        private void DataPath(string path, string relative)
        {
            if (dataRoot is null)
            {
                if (DataPaths.LexicalProblem(relative) is { } problem) Error(path, problem);
                return;
            }
            if (DataPaths.Resolve(dataRoot, relative, out var unsafePath) is null) Error(path, unsafePath!);
            else if (DataPaths.Missing(dataRoot, relative) is { } missing) Error(path, missing);
        }

        private void CheckName(string path, string name)
        {
            if (name.Length == 0) Error(path, "required");
            else if (name.Length > SpecLimits.MaxNameLength) Error(path, $"must be at most {SpecLimits.MaxNameLength} characters");
            else if (!NamePattern().IsMatch(name)) Error(path, "must be lowercase letters, digits, '-' or '_', starting with a letter or digit");
        }

        private void Stage(int i, StageSpec s)
        {
            string p = $"stages[{i}]";
            CheckName($"{p}.name", s.Name);
            if (!Enum.IsDefined(s.Kind)) Error($"{p}.kind", "unknown stage kind");

            for (int j = 0; j < s.Needs.Count; j++) Reference($"{p}.needs[{j}]", s, s.Needs[j]);
            Inputs(p, s);
            Objective(p, s);
            Model(p, s);
            Data(p, s);
            Train(p, s);
            Distributed(p, s);
            Outputs(p, s);
            HfInit(p, s);
        }

        /// <summary>A stage name used as a dependency: must exist and not be the stage itself.</summary>
        private StageSpec? Reference(string path, StageSpec s, string name)
        {
            if (name == s.Name) { Error(path, "a stage cannot depend on itself"); return null; }
            var target = Find(name);
            if (target is null) Error(path, $"no stage named '{name}'");
            return target;
        }

        private void Inputs(string p, StageSpec s)
        {
            var inputs = s.Inputs;
            foreach (var (key, name) in inputs.Named())
            {
                var target = Reference($"{p}.inputs.{key}", s, name);
                if (target is null) continue;
                bool wantsLabels = key == "labels";
                if (wantsLabels && !target.Kind.ProducesLabels())
                    Error($"{p}.inputs.{key}", $"'{name}' is a {SpecNames.Of(target.Kind)} stage; labels come from a label stage");
                else if (!wantsLabels && !target.Kind.Trains())
                    Error($"{p}.inputs.{key}", $"'{name}' is a {SpecNames.Of(target.Kind)} stage and produces no checkpoint");
            }

            // Which inputs each kind may use, and which it must have.
            if (inputs.Reference is not null && s.Kind != StageKind.Dpo)
                Error($"{p}.inputs.reference", "only dpo stages use a reference model");
            if (inputs.Teacher is not null && s.Kind is not (StageKind.Label or StageKind.Distill or StageKind.Evaluate))
                Error($"{p}.inputs.teacher", "only label, distill and evaluate stages use a teacher");
            // A finetune stage learns gold labels from its records; a teacher's stored labels are what distill learns
            // from (alpha 0 trains on the teacher's soft labels alone).
            if (inputs.Labels is not null && s.Kind != StageKind.Distill)
                Error($"{p}.inputs.labels", "only distill stages train on stored labels");
            if (inputs.Labels is null && s.Data.Source is StageOutput && s.Kind != StageKind.Distill)
                Error($"{p}.data.from", "only distill stages read a label stage's data set");
            if (inputs.Init is not null && s.Kind == StageKind.Label)
                Error($"{p}.inputs.init", "a label stage runs its teacher; name it in inputs.teacher");

            switch (s.Kind)
            {
                case StageKind.Dpo:
                    if (inputs.Init is null) Error($"{p}.inputs.init", "required for dpo: the policy starts from a trained model");
                    if (inputs.Reference is null) Error($"{p}.inputs.reference", "required for dpo: the frozen model the policy is compared with");
                    break;
                case StageKind.Label:
                    if (inputs.Teacher is null) Error($"{p}.inputs.teacher", "required for label: the model that writes the labels");
                    else if (Find(inputs.Teacher) is { } t && t.Kind.Trains() && TaskOf(t, []) is null)
                        Error($"{p}.inputs.teacher", $"'{t.Name}' is not a classifier, so it cannot label a corpus");
                    break;
                case StageKind.Distill:
                    if (inputs.Teacher is null && inputs.Labels is null)
                        Error($"{p}.inputs", "distill needs a teacher, stored labels, or both");
                    break;
                case StageKind.Evaluate:
                    if (inputs.Init is null) Error($"{p}.inputs.init", "required for evaluate: the checkpoint to score");
                    break;
            }

            if (inputs.Labels is { } labelStage && !(s.Data.Source is StageOutput so && so.Stage == labelStage))
                Error($"{p}.inputs.labels", "must name the same stage as data.from (inputs.labels is shorthand for it)");
            // With inputs.labels the source is that stage, already checked above; do not report it twice.
            if (s.Data.Source is StageOutput { Stage: var src } && src != inputs.Labels)
            {
                var target = src == s.Name ? null : Find(src);
                if (src == s.Name) Error($"{p}.data.from", "a stage cannot read its own output");
                else if (target is null) Error($"{p}.data.from", $"no stage named '{src}'");
                else if (!target.Kind.ProducesLabels())
                    Error($"{p}.data.from", $"'{src}' is a {SpecNames.Of(target.Kind)} stage; only label stages write data sets");
            }
        }

        private void Objective(string p, StageSpec s)
        {
            var allowed = s.Kind.AllowedObjectives();
            var o = s.Objective;
            string path = $"{p}.objective";
            if (o is null)
            {
                if (allowed.Count > 0) Error(path, $"required for {SpecNames.Of(s.Kind)}: one of {string.Join(", ", allowed.Select(SpecNames.Of))}");
                return;
            }
            if (allowed.Count == 0)
            {
                Error(path, $"{SpecNames.Of(s.Kind)} stages do not train; remove the objective");
                return;
            }
            if (!allowed.Contains(o.Kind))
            {
                Error(path, $"'{SpecNames.Of(o.Kind)}' does not fit a {SpecNames.Of(s.Kind)} stage; use {string.Join(" or ", allowed.Select(SpecNames.Of))}");
                return;
            }

            var family = s.Model.Family;
            if (ObjectiveDescriptors.Of(o.Kind).FamilyProblem(family) is { } unfit) Error(path, unfit);
            switch (o)
            {
                case PlmSpec plm:
                    if (plm.K < 2) Error($"{path}.k", "must be >= 2 (the last 1/k of each order is predicted)");
                    break;
                case SpanCorruptionSpec sc:
                    Open01($"{path}.noise_density", sc.NoiseDensity);
                    if (sc.MeanSpan < 1) Error($"{path}.mean_span", "must be >= 1");
                    else if (family == ModelFamily.T5 && sc.NoiseDensity is > 0 and < 1 && SpanCount(s.Data.SeqLen, sc) > SentinelCount)
                        Error($"{p}.data.seq_len", $"{s.Data.SeqLen} tokens give {SpanCount(s.Data.SeqLen, sc)} corrupted spans; there are {SentinelCount} sentinels (lower seq_len or noise_density, or raise mean_span)");
                    break;
                case ClassificationSpec c when c.Task.PerToken() && family == ModelFamily.T5:
                    Error($"{path}.task", $"t5 classifies text-to-text, one label word per sequence; {SpecNames.Of(c.Task)} (a label per token) needs an encoder with a token head");
                    break;
                case ClassificationSpec { Pooling: { } pooling } c:
                    if (c.Task.PerToken()) Error($"{path}.pooling", $"{SpecNames.Of(c.Task)} labels every token; pooling is for sequence tasks");
                    else if (family == ModelFamily.T5) Error($"{path}.pooling", "t5 classifies text-to-text (a label word from the decoder); it does not pool");
                    else if (pooling == SequencePooling.Cls && family is ModelFamily.Gpt or ModelFamily.Xlnet)
                        Error($"{path}.pooling", $"{SpecNames.Of(family)} has no [CLS] that sees the whole sequence; use last or mean");
                    break;
                case MlmSpec m:
                    Open01($"{path}.mask_prob", m.MaskProb);
                    break;
                case RtdSpec r:
                    Open01($"{path}.mask_prob", r.MaskProb);
                    if (r.DiscriminatorWeight <= 0) Error($"{path}.discriminator_weight", "must be > 0");
                    if (family == ModelFamily.Electra && s.Model.Generator is null) Error($"{p}.model.generator", "required for rtd: the ELECTRA generator");
                    break;
                case DistillSpec d:
                    if (d.Temperature <= 0) Error($"{path}.temperature", "must be > 0");
                    if (d.Alpha is < 0 or > 1) Error($"{path}.alpha", "must be between 0 and 1");
                    if (d.MaxParamRatio is { } ratio && ratio is <= 0 or > 1) Error($"{path}.max_param_ratio", "must be > 0 and <= 1");
                    break;
            }
            if (o is DpoSpec { Beta: <= 0 }) Error($"{path}.beta", "must be > 0");
        }

        /// <summary>The sentinels T5's span corruption can use: one per span (the tokenizer's &lt;extra_id_0..31&gt;).</summary>
        private const int SentinelCount = 32;

        /// <summary>Spans span corruption cuts from the longest body a sequence of seqLen tokens holds (seqLen − 2, between [bos] and [eos]).</summary>
        private static int SpanCount(int seqLen, SpanCorruptionSpec sc) => seqLen < 4 ? 1 : sc.Cut(seqLen - 2).Spans;

        private void Open01(string path, double x)
        {
            if (x is <= 0 or >= 1) Error(path, "must be > 0 and < 1");
        }

        /// <summary>The classification task a stage's model predicts (<see cref="Lineage.TaskOf"/>).</summary>
        private ClassificationTask? TaskOf(StageSpec s, HashSet<string> _) => Lineage.TaskOf(spec, s);

        /// <summary>The model a distill stage is measured against: its teacher, else the teacher behind its labels.</summary>
        private StageSpec? TeacherOf(StageSpec s)
        {
            if (s.Inputs.Teacher is { } t) return Find(t);
            if (s.Inputs.Labels is { } l && Find(l)?.Inputs.Teacher is { } lt) return Find(lt);
            return null;
        }

        private void Model(string p, StageSpec s)
        {
            var m = s.Model;
            string path = $"{p}.model";

            // A model inherited unchanged was checked where it was declared; checking again only repeats errors.
            var source = s.Inputs.HfInit is not null ? null : s.Inputs.Init ?? (s.Kind == StageKind.Label ? s.Inputs.Teacher : null);
            var from = source is null ? null : Find(source);
            if (from is not null && from.Name != s.Name)
                SameShape(path, m, from, source == s.Inputs.Init ? "init" : "teacher");
            if (from is null || from.Model != m) Shape(path, m);

            if (s.Kind == StageKind.Distill && TeacherOf(s) is { } teacher && teacher.Name != s.Name)
            {
                if (s.Inputs.Teacher is not null && teacher.Model.VocabSize != m.VocabSize)
                    Error($"{path}.vocab_size", $"must equal teacher '{teacher.Name}' vocab_size ({teacher.Model.VocabSize}): student and teacher read the same tokens");
                if (s.Objective is DistillSpec { MaxParamRatio: { } ratio } && ratio is > 0 and <= 1)
                {
                    long student = m.ApproxParameters(), big = teacher.Model.ApproxParameters();
                    if (big > 0 && student > ratio * big)
                        Error(path, $"student has ~{student:N0} parameters, {100.0 * student / big:F0}% of teacher '{teacher.Name}' (~{big:N0}); objective.max_param_ratio allows {100 * ratio:F0}%");
                }
            }
            if (s.Kind == StageKind.Dpo && s.Inputs.Reference is { } r && Find(r) is { } reference && reference.Name != s.Name)
                SameShape(path, m, reference, "reference");
        }

        /// <summary>Checks a model on its own: ranges, divisibility, family-specific parts.</summary>
        private void Shape(string path, ModelSpec m)
        {
            if (!Enum.IsDefined(m.Family)) Error($"{path}.family", "unknown model family");
            Range($"{path}.layers", m.Layers, 1, SpecLimits.MaxLayers);
            Range($"{path}.hidden", m.Hidden, 1, SpecLimits.MaxHidden);
            Range($"{path}.heads", m.Heads, 1, SpecLimits.MaxHidden);
            if (m.Hidden > 0 && m.Heads > 0 && m.Hidden % m.Heads != 0)
                Error($"{path}.heads", $"hidden ({m.Hidden}) must be divisible by heads ({m.Heads})");
            Range($"{path}.ffn", m.Ffn, 1, 16 * SpecLimits.MaxHidden);
            Range($"{path}.max_len", m.MaxLen, 1, SpecLimits.MaxLen);
            int reserved = ModelFamilies.ReservedTokenIds;
            // A files tokenizer's size is known once its files are read; the runner checks vocab_size then.
            if (m.VocabSize == 0 && spec.Tokenizer is { Kind: TokenizerKind.Files }) { }
            else if (spec.Tokenizer is { Kind: not TokenizerKind.Subvocab }) { if (m.VocabSize > SpecLimits.MaxVocab) Error($"{path}.vocab_size", $"must be <= {SpecLimits.MaxVocab}"); }
            else if (m.VocabSize <= reserved)
                Error($"{path}.vocab_size", $"must be > {reserved}: the tokenizer reserves {reserved} ids (38 special tokens and 256 byte tokens)");
            else if (m.VocabSize > SpecLimits.MaxVocab)
                Error($"{path}.vocab_size", $"must be <= {SpecLimits.MaxVocab}");
            if (m.Dropout is < 0 or >= 1) Error($"{path}.dropout", "must be >= 0 and < 1");

            if (m.EmbeddingSize is { } e)
            {
                if (m.Family is not (ModelFamily.Albert or ModelFamily.Electra))
                    Error($"{path}.embedding_size", "only albert and electra factorise embeddings");
                else if (e < 1) Error($"{path}.embedding_size", "must be > 0");
                else if (e > m.Hidden) Error($"{path}.embedding_size", $"{e} exceeds hidden ({m.Hidden}); factorised embeddings are narrower than the model");
            }

            // XLNet's two-stream blocks and T5's stacks follow their papers; the shared transformer core takes either.
            if (m.Norm is not null && m.Family.HasRelativePositions())
                Error($"{path}.norm", $"{SpecNames.Of(m.Family)} keeps its paper's placement; norm applies to bert, roberta, albert, electra and gpt");

            if (m.Generator is { } g)
            {
                string gp = $"{path}.generator";
                if (m.Family != ModelFamily.Electra) Error(gp, "only electra has a generator");
                Range($"{gp}.layers", g.Layers, 1, SpecLimits.MaxLayers);
                Range($"{gp}.hidden", g.Hidden, 1, SpecLimits.MaxHidden);
                Range($"{gp}.heads", g.Heads, 1, SpecLimits.MaxHidden);
                Range($"{gp}.ffn", g.Ffn, 1, 16 * SpecLimits.MaxHidden);
                if (g.Hidden > 0 && g.Heads > 0 && g.Hidden % g.Heads != 0)
                    Error($"{gp}.heads", $"hidden ({g.Hidden}) must be divisible by heads ({g.Heads})");
                // A generator as strong as the discriminator makes replaced tokens too hard to detect (ELECTRA §3.2).
                if (g.Hidden > m.Hidden) Error($"{gp}.hidden", $"{g.Hidden} exceeds the discriminator's hidden ({m.Hidden})");
                if (g.Layers > m.Layers) Error($"{gp}.layers", $"{g.Layers} exceeds the discriminator's layers ({m.Layers})");
                if (g.Ffn > m.Ffn) Error($"{gp}.ffn", $"{g.Ffn} exceeds the discriminator's ffn ({m.Ffn})");
            }
        }

        /// <summary>A checkpoint loads only into an identical architecture; name the first field that differs.</summary>
        private void SameShape(string path, ModelSpec m, StageSpec other, string role)
        {
            var o = other.Model;
            if (m.SameShapeAs(o)) return;
            (string Key, object? Mine, object? Theirs)[] fields =
            [
                ("family", SpecNames.Of(m.Family), SpecNames.Of(o.Family)), ("layers", m.Layers, o.Layers),
                ("hidden", m.Hidden, o.Hidden), ("heads", m.Heads, o.Heads), ("ffn", m.Ffn, o.Ffn),
                ("max_len", m.MaxLen, o.MaxLen), ("vocab_size", m.VocabSize, o.VocabSize),
                ("embedding_size", m.EmbeddingWidth, o.EmbeddingWidth), ("generator", m.Generator, o.Generator),
                ("norm", SpecNames.Of(m.NormPosition), SpecNames.Of(o.NormPosition)),
            ];
            var (key, mine, theirs) = fields.First(f => !Equals(f.Mine, f.Theirs));
            Error($"{path}.{key}", $"{mine ?? "none"} differs from {role} stage '{other.Name}' ({theirs ?? "none"}); a checkpoint loads only into the same shape");
        }

        private void Data(string p, StageSpec s)
        {
            var d = s.Data;
            string path = $"{p}.data";
            var schema = Lineage.SchemaOf(spec, s);
            var task = TaskOf(s, []);
            if (d.Source is CorpusFile file)
            {
                DataPath($"{path}.path", file.Path);
                if (task is { } t && t.Corpus() is { } builtin && s.Kind != StageKind.Label)
                    Error($"{p}.objective.task", $"'{SpecNames.Of(t)}' is labelled only in the built-in {SpecNames.Of(builtin)} corpus; for your own labelled files use task: {(t.PerToken() ? "token" : "sequence")}");
                if (s.Objective is MlmSpec { SentenceTask: not SentenceTask.None } mlm)
                    Error($"{p}.objective.sentence_task", $"{SpecNames.Of(mlm.SentenceTask)} needs documents cut into sentences, which only the built-in corpora have; on your own text use {{kind: mlm, sentence_task: none}} (RoBERTa's recipe)");
                if (d.Fields is { } fields && schema is { } sc)
                    foreach (var key in fields.Keys.Where(k => !sc.Fields().Contains(k)))
                        Error($"{path}.fields.{key}", $"not a field of the {SpecNames.Of(sc)} schema this stage reads ({string.Join(", ", sc.Fields())})");
                if (d.Fields is { Count: > 0 } && schema is null)
                    Error($"{path}.fields", "this stage reads its label stage's records; rename fields there");
            }
            else
            {
                if (d.Fields is not null) Error($"{path}.fields", "applies to files of your own (data.path)");
                if (d.ValidationFraction is not null) Error($"{path}.validation_fraction", "applies to files of your own (data.path)");
                if (d.TestFraction is not null) Error($"{path}.test_fraction", "applies to files of your own (data.path)");
            }
            if (d.ValidationFraction is < 0 or >= 1) Error($"{path}.validation_fraction", "must be >= 0 and < 1");
            if (d.TestFraction is < 0 or >= 1) Error($"{path}.test_fraction", "must be >= 0 and < 1");
            if ((d.ValidationFraction ?? DataSpec.DefaultHeldOut) + (d.TestFraction ?? DataSpec.DefaultHeldOut) >= 1)
                Error($"{path}.validation_fraction", "validation_fraction + test_fraction must leave records to train on (sum < 1)");
            if (d.Source is BuiltinCorpus { Name: var corpus } && task is { } named && s.Kind != StageKind.Label)
            {
                if (named.Corpus() is not { } needed)
                    Error($"{p}.objective.task", $"'{SpecNames.Of(named)}' reads your own files (data.path); the {SpecNames.Of(corpus)} corpus is labelled for {string.Join(", ", Enum.GetValues<ClassificationTask>().Where(t => t.Corpus() == corpus).Select(SpecNames.Of))}");
                else if (corpus != needed)
                    Error($"{path}.corpus", $"task '{SpecNames.Of(named)}' is labelled only in the {SpecNames.Of(needed)} corpus");
            }
            if (!Enum.IsDefined(d.Split)) Error($"{path}.split", "unknown split");
            if (d.SeqLen < 1) Error($"{path}.seq_len", "must be > 0");
            else if (d.SeqLen > SpecLimits.MaxSeqLen) Error($"{path}.seq_len", $"{d.SeqLen} exceeds the limit of {SpecLimits.MaxSeqLen} tokens (SpecLimits.MaxSeqLen)");
            else if (d.SeqLen > s.Model.MaxLen && s.Model.MaxLen > 0 && !s.Model.Family.HasRelativePositions())
                Error($"{path}.seq_len", $"{d.SeqLen} exceeds model.max_len ({s.Model.MaxLen})");
            if (d.MaxExamples is < 1) Error($"{path}.max_examples", "must be > 0 (omit it to read everything)");
            if (d.TrainExamples is { } n)
            {
                if (n < 1) Error($"{path}.train_examples", "must be > 0 (omit it to train on every example)");
                else if (!s.Kind.Trains()) Error($"{path}.train_examples", $"a {SpecNames.Of(s.Kind)} stage does not train; use max_examples to cap what it reads");
                else if (s.Kind == StageKind.Distill) Error($"{path}.train_examples", "a distill stage trains on what its label stage labelled; sample there with max_examples");
            }
        }

        private void Train(string p, StageSpec s)
        {
            var t = s.Train;
            string path = $"{p}.train";
            if (t.BatchSize < 1) Error($"{path}.batch_size", "must be > 0");
            if (t.MicroBatches < 1) Error($"{path}.micro_batches", "must be > 0");
            else if (t.BatchSize >= 1 && t.BatchSize % t.MicroBatches != 0)
                Error($"{path}.batch_size", $"{t.BatchSize} is not divisible by micro_batches ({t.MicroBatches})");
            else if (t.BatchSize >= 1)
            {
                // Every worker count the scheduler may pick must split each micro-batch evenly, so the global batch,
                // and with it the result, is the same whether the stage runs on one process or many.
                int perMicro = t.BatchSize / t.MicroBatches;
                var d = s.Distributed;
                if (d.MinWorkers >= 1 && d.MaxWorkers >= d.MinWorkers && d.MaxWorkers <= SpecLimits.MaxWorkers)
                {
                    for (int w = d.MinWorkers; w <= d.MaxWorkers; w++)
                    {
                        if (perMicro % w == 0) continue;
                        Error($"{path}.batch_size", $"{t.BatchSize} / {t.MicroBatches} micro-batches = {perMicro} per micro-batch, which {w} workers cannot split evenly (workers may be {d.MinWorkers}..{d.MaxWorkers})");
                        break;
                    }
                }
            }
            if (!s.Kind.Trains()) return; // label and evaluate only use batch_size

            Range($"{path}.steps", t.Steps, 1, SpecLimits.MaxSteps);
            if (t.Lr is <= 0 or > 1) Error($"{path}.lr", "must be > 0 and <= 1");
            if (t.Warmup < 0) Error($"{path}.warmup", "must be >= 0");
            else if (t.Steps > 0 && t.Warmup > t.Steps) Error($"{path}.warmup", $"{t.Warmup} exceeds steps ({t.Steps})");
            if (!Enum.IsDefined(t.Schedule)) Error($"{path}.schedule", "unknown schedule");
            if (t.WeightDecay is < 0 or >= 1) Error($"{path}.weight_decay", "must be >= 0 and < 1");
            if (t.Clip < 0) Error($"{path}.clip", "must be >= 0 (0 disables clipping)");
            if (t.EvalEvery < 0) Error($"{path}.eval_every", "must be >= 0 (0 evaluates only at the end)");
            if (t.CheckpointEvery < 0) Error($"{path}.checkpoint_every", "must be >= 0 (0 checkpoints only at the end)");
            if (t.Seed is < 0) Error($"{path}.seed", "must be >= 0");
            if (t.FreezeBackbone)
            {
                // Only these kinds put a new head on a backbone; T5 classifies text-to-text with its whole LM.
                if (s.Kind is not (StageKind.Finetune or StageKind.Reward))
                    Error($"{path}.freeze_backbone", $"a {SpecNames.Of(s.Kind)} stage has no new head to train alone; freeze_backbone applies to finetune and reward stages");
                else if (s.Model.Family == ModelFamily.T5)
                    Error($"{path}.freeze_backbone", "t5 classifies text-to-text with its whole encoder-decoder, so there is no separate head to train alone");
            }
        }

        private void Distributed(string p, StageSpec s)
        {
            var d = s.Distributed;
            string path = $"{p}.distributed";
            if (d.MinWorkers < 1) Error($"{path}.workers", "min must be >= 1");
            else if (d.MaxWorkers < d.MinWorkers) Error($"{path}.workers", $"min ({d.MinWorkers}) must be <= max ({d.MaxWorkers})");
            else if (d.MaxWorkers > SpecLimits.MaxWorkers) Error($"{path}.workers", $"max must be <= {SpecLimits.MaxWorkers}");
            if (!Enum.IsDefined(d.Aggregation)) Error($"{path}.aggregation", "unknown aggregation");
            if (!Enum.IsDefined(d.Wire)) Error($"{path}.wire", "unknown wire format");
            if (d.ChecksumEvery < 0) Error($"{path}.checksum_every", "must be >= 0 (0 disables checksums)");
            Range($"{path}.max_restarts", d.MaxRestarts, 0, 100);
            if (!(d.GradientBucketMb >= 0 && d.GradientBucketMb <= 1024)) Error($"{path}.gradient_bucket_mb", "must be a number from 0 (no overlap: one all-reduce after backward) to 1024");
        }

        private void Outputs(string p, StageSpec s)
        {
            var o = s.Outputs;
            string path = $"{p}.outputs";
            if (o.KeepCheckpoints < 1) Error($"{path}.keep_checkpoints", "must be >= 1");
            if (o.SoftLabels && s.Kind != StageKind.Label) Error($"{path}.soft_labels", "only label stages write labels");
            if (o.Export is ExportFormat.Hf) Export($"{path}.export", s);
            if (o.Metrics is not { Count: > 0 } metrics) return;
            if (s.Kind != StageKind.Evaluate)
            {
                Error($"{path}.metrics", "only evaluate stages compute metrics");
                return;
            }
            var evaluated = s.Inputs.Init is { } init ? Find(init) : null;
            for (int j = 0; j < metrics.Count; j++)
            {
                string mp = $"{path}.metrics[{j}]";
                switch (metrics[j])
                {
                    case Metric.Accuracy or Metric.MacroF1 when evaluated is not null && TaskOf(evaluated, []) is null:
                        Error(mp, $"'{evaluated.Name}' is not a classifier");
                        break;
                    case Metric.Perplexity when evaluated is not null && !IsLanguageModel(evaluated):
                        Error(mp, $"'{evaluated.Name}' is not a language model");
                        break;
                    case Metric.Agreement when s.Inputs.Teacher is null:
                        Error(mp, "agreement compares with inputs.teacher, which is not set");
                        break;
                    case var m when !Enum.IsDefined(m):
                        Error(mp, "unknown metric");
                        break;
                }
            }
        }

        /// <summary>An <c>hf:DIR</c> init: a training stage of a family with an importer, and a safe path under the data root (on disk when one is given).</summary>
        private void HfInit(string p, StageSpec s)
        {
            if (s.Inputs.HfInit is not { } dir) return;
            string path = $"{p}.inputs.init";
            if (!s.Kind.Trains()) Error(path, "only training stages load a Hugging Face checkpoint");
            else if (!ModelFamilies.HfModelTypes.ContainsKey(s.Model.Family))
                Error(path, $"Hugging Face import of family '{SpecNames.Of(s.Model.Family)}' is not supported yet ({Supported}; see docs/interop.md)");
            else if (s.Model.Family == ModelFamily.Electra && s.Objective is RtdSpec)
                Error(path, "an ELECTRA checkpoint is a discriminator without its generator, so it cannot start rtd pre-training; import it into a finetune stage");
            else if (DataPaths.LexicalProblem(dir) is { } problem) Error(path, problem);
            else if (dataRoot is not null && DataPaths.Missing(dataRoot, dir) is { } missing) Error(path, missing);
        }

        private static string Supported => string.Join(", ", ModelFamilies.HfModelTypes.Keys.Select(f => SpecNames.Of(f)));

        /// <summary>Hugging Face export exists for GPT language models and encoder pre-training models with a tokenizer Hugging Face can load (docs/interop.md).</summary>
        private void Export(string path, StageSpec s)
        {
            if (!s.Kind.Trains()) Error(path, "only training stages export a model");
            else if (!ModelFamilies.HfModelTypes.ContainsKey(s.Model.Family))
                Error(path, $"Hugging Face export of family '{SpecNames.Of(s.Model.Family)}' is not supported yet ({Supported}; see docs/interop.md)");
            else if (s.Model.Family == ModelFamily.Gpt && s.Objective is not (ClmSpec or SftSpec or DpoSpec) && !ExportsAsSequenceClassifier(s))
                Error(path, "Hugging Face export needs a gpt language model (clm, sft or dpo) or a sequence classifier pooling the last token (GPT2ForSequenceClassification), not a token classifier or reward model");
            else if (s.Model.Family == ModelFamily.T5 && !(s.Kind == StageKind.Pretrain && s.Objective is SpanCorruptionSpec))
                Error(path, "Hugging Face export of a t5 needs its encoder-decoder as pre-trained (a pretrain stage with span_corruption: T5ForConditionalGeneration); a text-to-text classifier is not exported");
            else if (s.Model.Family == ModelFamily.Xlnet && !(s.Kind == StageKind.Pretrain && s.Objective is PlmSpec))
                Error(path, "Hugging Face export of an xlnet needs its language model (a pretrain stage with plm: XLNetLMHeadModel), not a classifier or reward model");
            else if (IsBertLine(s.Model.Family) && !(s.Kind == StageKind.Pretrain && s.Objective is MlmSpec or RtdSpec) && !HfClassifier(s))
                Error(path, $"Hugging Face export of a {SpecNames.Of(s.Model.Family)} needs its pre-training model (a pretrain stage with mlm{(s.Model.Family == ModelFamily.Electra ? " or rtd" : "")})"
                    + (s.Model.Family == ModelFamily.Electra ? "; an ELECTRA classifier's head (dense, GELU) is not DistTrain's (pooler, tanh)" : " or a finetune sequence classifier that pools [CLS] (pooling: cls, the default)"));
            else if (spec.TokenizerOrDefault.Kind == TokenizerKind.Subvocab)
                Error(path, "Hugging Face export needs tokenizer kind gpt2 or files; a sub-vocabulary has no Hugging Face form");
            else if (EncoderLayoutProblem(s) is { } problem)
                Error(path, problem);
        }

        /// <summary>Why an encoder stage's model has no Hugging Face layout though its family has one (docs/interop.md), or null.</summary>
        private string? EncoderLayoutProblem(StageSpec s)
        {
            var m = s.Model;
            if (!IsBertLine(m.Family)) return null;
            if (m.NormPosition != LayerNormPosition.Post)
                return $"a {SpecNames.Of(m.Family)} with norm {SpecNames.Of(m.NormPosition)} has no Hugging Face layout (post-LN only)";
            if (m.Family == ModelFamily.Albert && m.EmbeddingWidth >= m.Hidden)
                return $"Hugging Face ALBERT maps embedding_size to hidden with a projection DistTrain has only when embedding_size < hidden (here {m.EmbeddingWidth} and {m.Hidden})";
            if (m.Family is ModelFamily.Bert or ModelFamily.Roberta && m.EmbeddingWidth != m.Hidden)
                return $"Hugging Face {SpecNames.Of(m.Family)} has no factorised embeddings (embedding_size {m.EmbeddingWidth} ≠ hidden {m.Hidden})";
            if (s.Objective is MlmSpec { SentenceTask: SentenceTask.Sop } && m.Family == ModelFamily.Bert)
                return "BertForPreTraining's pair head is NSP; a BERT trained with sop has no Hugging Face layout";
            if (s.Objective is MlmSpec { SentenceTask: SentenceTask.Nsp } && m.Family == ModelFamily.Albert)
                return "AlbertForPreTraining's pair head is SOP; an ALBERT trained with nsp has no Hugging Face layout";
            if (m.Family == ModelFamily.Roberta)
            {
                var root = s;
                for (int hops = 0; root.Inputs.HfInit is null && root.Inputs.Init is { } init && Find(init) is { } up && hops < spec.Stages.Count; hops++) root = up;
                if (root.Inputs.HfInit is null)
                    return "a RoBERTa trained from scratch has no position offset, and Hugging Face RoBERTa would read another function (docs/interop.md); export RoBERTa stages that start from an hf: checkpoint";
            }
            return null;
        }

        /// <summary>The post-LN encoders whose Hugging Face layouts share one key map (HfEncoderLayout).</summary>
        private static bool IsBertLine(ModelFamily f) => f is ModelFamily.Bert or ModelFamily.Roberta or ModelFamily.Electra or ModelFamily.Albert;

        /// <summary>A BERT, RoBERTa or ALBERT sequence classifier on [CLS] through the pooler: *ForSequenceClassification.</summary>
        private static bool HfClassifier(StageSpec s) =>
            s.Kind == StageKind.Finetune && s.Model.Family is ModelFamily.Bert or ModelFamily.Roberta or ModelFamily.Albert
            && s.Objective is ClassificationSpec { Pooling: null or SequencePooling.Cls } c && !c.Task.PerToken();

        /// <summary>A sequence classifier (fine-tuned or distilled) that pools the last token: GPT2ForSequenceClassification's function.</summary>
        private static bool ExportsAsSequenceClassifier(StageSpec s) => s.Objective switch
        {
            ClassificationSpec c => s.Kind == StageKind.Finetune && !c.Task.PerToken() && c.Pooling is null or SequencePooling.Last,
            DistillSpec => s.Kind == StageKind.Distill,
            _ => false,
        };

        private static bool IsLanguageModel(StageSpec s) => s.Objective is MlmSpec or ClmSpec or SftSpec or PlmSpec or SpanCorruptionSpec;

        private void Range(string path, int value, int min, int max)
        {
            if (value < min) Error(path, min == 1 ? "must be > 0" : $"must be >= {min}");
            else if (value > max) Error(path, $"must be <= {max}");
        }
    }
}
