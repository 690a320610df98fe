using System.Text.Json.Nodes;
using DistTrain.Models.Interop;
using static TorchSharp.torch;

namespace DistTrain.Models.Tests.Interop;

/// <summary>
/// BERT, RoBERTa, ELECTRA (discriminator) and ALBERT in Hugging Face layout. Each test writes a small reference checkpoint
/// itself from the published key map (BertForPreTraining, RobertaForMaskedLM, ElectraForPreTraining, AlbertForPreTraining;
/// tied decoder copies and the position_ids buffer included), then checks the round trip bit for bit, the first block
/// and the head's logits against plain matrix arithmetic written here, and the errors.
/// </summary>
public sealed class HfEncoderTests : IDisposable
{
    private const int Special = 38;   // DistTrain's own ids before a tokenizer's (TokenizerSpec.SpecialIds)
    private const int V = 20, H = 16, E = 8, L = 2, A = 2, I = 32, P = 8;
    private readonly string root = Directory.CreateTempSubdirectory("hf-enc-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>How each family names its tensors, and the config.json facts the hand computation needs.</summary>
    private sealed record Layout(string Type, string Prefix, int Offset, int Types, int Emb, bool TanhGelu)
    {
        public bool Albert => Type == "albert";
        public string Layer(int i) => Albert ? $"{Prefix}encoder.albert_layer_groups.0.albert_layers.0." : $"{Prefix}encoder.layer.{i}.";
        public string Q(int i) => Layer(i) + (Albert ? "attention.query" : "attention.self.query");
        public string K(int i) => Layer(i) + (Albert ? "attention.key" : "attention.self.key");
        public string Vv(int i) => Layer(i) + (Albert ? "attention.value" : "attention.self.value");
        public string O(int i) => Layer(i) + (Albert ? "attention.dense" : "attention.output.dense");
        public string Ln1(int i) => Layer(i) + (Albert ? "attention.LayerNorm" : "attention.output.LayerNorm");
        public string Fc1(int i) => Layer(i) + (Albert ? "ffn" : "intermediate.dense");
        public string Fc2(int i) => Layer(i) + (Albert ? "ffn_output" : "output.dense");
        public string Ln2(int i) => Layer(i) + (Albert ? "full_layer_layer_norm" : "output.LayerNorm");
        public string? Projection => Type switch { "albert" => "albert.encoder.embedding_hidden_mapping_in", "electra" => "electra.embeddings_project", _ => null };
    }

    private static readonly Dictionary<string, Layout> Families = new()
    {
        ["bert"] = new("bert", "bert.", 0, 2, H, false),
        ["roberta"] = new("roberta", "roberta.", 2, 1, H, false),
        ["electra"] = new("electra", "electra.", 0, 2, E, false),
        ["albert"] = new("albert", "albert.", 0, 2, E, true),
    };

    /// <summary>Random tensors under the family's HF names (fixed seed), in the reference model's order.</summary>
    private static List<KeyValuePair<string, Tensor>> ReferenceTensors(Layout f, bool classifier = false)
    {
        Tiny.Seed(11);
        var t = new List<KeyValuePair<string, Tensor>>();
        void Add(string name, params long[] shape) => t.Add(KeyValuePair.Create(name, randn(shape) * 0.3));
        void Linear(string name, long outs, long ins) { Add(name + ".weight", outs, ins); Add(name + ".bias", outs); }
        void Norm(string name, long n) { t.Add(KeyValuePair.Create(name + ".weight", 1 + randn(n) * 0.1)); Add(name + ".bias", n); }
        string p = f.Prefix;
        Add(p + "embeddings.word_embeddings.weight", V, f.Emb);
        Add(p + "embeddings.position_embeddings.weight", P + f.Offset, f.Emb);
        Add(p + "embeddings.token_type_embeddings.weight", f.Types, f.Emb);
        Norm(p + "embeddings.LayerNorm", f.Emb);
        t.Add(KeyValuePair.Create(p + "embeddings.position_ids", arange(P + f.Offset).to(ScalarType.Float32).unsqueeze(0)));
        if (f.Projection is { } proj) Linear(proj, H, f.Emb);
        for (int i = 0; i < (f.Albert ? 1 : L); i++)
        {
            Linear(f.Q(i), H, H); Linear(f.K(i), H, H); Linear(f.Vv(i), H, H); Linear(f.O(i), H, H); Norm(f.Ln1(i), H);
            Linear(f.Fc1(i), I, H); Linear(f.Fc2(i), H, I); Norm(f.Ln2(i), H);
        }
        var word = t[0].Value;
        if (classifier)
        {
            // *ForSequenceClassification: BERT/ALBERT pooler + classifier; RoBERTa's classifier.dense + out_proj on <s>.
            if (f.Type == "roberta") { Linear("classifier.dense", H, H); Linear("classifier.out_proj", Labels, H); }
            else { Linear(f.Type == "albert" ? "albert.pooler" : "bert.pooler.dense", H, H); Linear("classifier", Labels, H); }
            return t;
        }
        switch (f.Type)
        {
            case "bert":
                Linear("bert.pooler.dense", H, H);
                Add("cls.predictions.bias", V);
                Linear("cls.predictions.transform.dense", H, H);
                Norm("cls.predictions.transform.LayerNorm", H);
                t.Add(KeyValuePair.Create("cls.predictions.decoder.weight", word.clone()));
                t.Add(KeyValuePair.Create("cls.predictions.decoder.bias", t.Single(kv => kv.Key == "cls.predictions.bias").Value.clone()));
                Linear("cls.seq_relationship", 2, H);
                break;
            case "roberta":
                Linear("lm_head.dense", H, H);
                Norm("lm_head.layer_norm", H);
                Add("lm_head.bias", V);
                t.Add(KeyValuePair.Create("lm_head.decoder.weight", word.clone()));
                break;
            case "electra":
                Linear("discriminator_predictions.dense", H, H);
                Linear("discriminator_predictions.dense_prediction", 1, H);
                break;
            case "albert":
                Linear("albert.pooler", H, H);
                Add("predictions.bias", V);
                Linear("predictions.dense", E, H);
                Norm("predictions.LayerNorm", E);
                t.Add(KeyValuePair.Create("predictions.decoder.weight", word.clone()));
                Linear("sop_classifier.classifier", 2, H);
                break;
        }
        return t;
    }

    /// <summary>Names the export leaves out: tied copies (transformers re-ties them on load) and buffers.</summary>
    private static bool Derived(string name) => name.EndsWith("decoder.weight") || name.EndsWith("decoder.bias") || name.EndsWith("position_ids");

    private const int Labels = 3;

    private string WriteCheckpoint(Layout f, string name, IEnumerable<KeyValuePair<string, Tensor>>? tensors = null, bool classifier = false)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), (tensors ?? ReferenceTensors(f, classifier)).ToList());
        var config = new JsonObject
        {
            ["model_type"] = f.Type, ["vocab_size"] = V, ["hidden_size"] = H, ["num_hidden_layers"] = L, ["num_attention_heads"] = A,
            ["intermediate_size"] = I, ["max_position_embeddings"] = P + f.Offset, ["type_vocab_size"] = f.Types,
            ["hidden_act"] = f.TanhGelu ? "gelu_new" : "gelu", ["layer_norm_eps"] = f.Type == "roberta" ? 1e-5 : 1e-12,
            ["pad_token_id"] = f.Type == "roberta" ? 1 : 0,
        };
        if (f.Emb != H) config["embedding_size"] = f.Emb;
        if (classifier) config["id2label"] = new JsonObject { ["0"] = "ham", ["1"] = "spam", ["2"] = "eggs" };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        // A WordPiece vocabulary whose [CLS]/[SEP]/[MASK] ids the special rows must copy.
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), Enumerable.Range(0, V).Select(i => i switch { 0 => "[PAD]", 7 => "[CLS]", 8 => "[SEP]", 9 => "[MASK]", _ => $"w{i}" }));
        return dir;
    }

    private static nn.Module Import(string dir)
    {
        var family = HfFamilies.Of(dir);
        var model = family.Create(dir, family.ReadConfig(dir, Special));
        family.Import(model, dir, Special);
        model.eval();
        return model;
    }

    private static Transformer BackboneOf(nn.Module m) => ((IHasBackbone)m).Backbone;

    [Theory]
    [InlineData("bert")] [InlineData("roberta")] [InlineData("electra")] [InlineData("albert")]
    public void Import_then_export_reproduces_every_tensor_bit_for_bit(string type)
    {
        var f = Families[type];
        var source = WriteCheckpoint(f, "in");
        using var model = Import(source);
        var output = Path.Combine(root, "out");
        HfFamilies.Of(source).Export(model, output, Special, null);

        var expected = Safetensors.Read(Path.Combine(source, "model.safetensors")).Where(kv => !Derived(kv.Key)).ToDictionary();
        var actual = Safetensors.Read(Path.Combine(output, "model.safetensors"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected)
            Assert.True(Tensors.Same(t, actual[name]), $"{name} changed in the round trip");
        var family = HfFamilies.Of(output);
        Assert.Equal(family.ReadConfig(source, Special), family.ReadConfig(output, Special));
    }

    [Theory]
    [InlineData("bert")] [InlineData("roberta")] [InlineData("electra")] [InlineData("albert")]
    public void First_block_and_head_logits_equal_a_hand_computation(string type)
    {
        var f = Families[type];
        var dir = WriteCheckpoint(f, "f");
        var w = Safetensors.Read(Path.Combine(dir, "model.safetensors"));
        using var model = Import(dir);
        var hfIds = tensor(new long[] { 3, 17, 0 });                                        // (T) checkpoint ids
        var ids = (hfIds + Special).unsqueeze(0);                                            // (1, T) DistTrain ids
        using var _ = no_grad();
        double eps = type == "roberta" ? 1e-5 : 1e-12;
        string p = f.Prefix;

        // Embeddings: word + position (RoBERTa's start at padding_idx + 1 = 2) + token type 0, LayerNorm, then E→H.
        var x = w[p + "embeddings.word_embeddings.weight"].index_select(0, hfIds)
            + w[p + "embeddings.position_embeddings.weight"].narrow(0, f.Offset, 3)
            + w[p + "embeddings.token_type_embeddings.weight"][0];                          // (T, E)
        x = Norm(x, w, p + "embeddings.LayerNorm", eps);
        if (f.Projection is { } proj) x = Lin(x, w, proj);                                   // (T, H)
        var backbone = BackboneOf(model);
        var first = backbone.Layer(0).forward(backbone.Embed(ids, null), null);              // (1, T, H)
        x = Block(w, f, 0, x, eps);
        Assert.True(first[0].allclose(x, 0, 1e-5), "first block differs from the hand computation");

        for (int i = 1; i < L; i++) x = Block(w, f, i, x, eps);
        Tensor expected, actual;
        if (type == "electra")
        {
            expected = Lin(Gelu(Lin(x, w, "discriminator_predictions.dense"), false), w, "discriminator_predictions.dense_prediction").squeeze(-1); // (T)
            actual = ((ElectraDiscriminator)model).forward(ids, null, null)[0];
        }
        else
        {
            string head = type switch { "bert" => "cls.predictions.transform.", "roberta" => "lm_head.", _ => "predictions." };
            string dense = type == "bert" ? "dense" : type == "roberta" ? "dense" : "dense", norm = type switch { "bert" => "LayerNorm", "roberta" => "layer_norm", _ => "LayerNorm" };
            string bias = type switch { "bert" => "cls.predictions.bias", "roberta" => "lm_head.bias", _ => "predictions.bias" };
            var u = Norm(Gelu(Lin(x, w, head + dense), f.TanhGelu), w, head + norm, eps);    // (T, E)
            expected = u.matmul(w[p + "embeddings.word_embeddings.weight"].t()) + w[bias];     // (T, V)
            actual = ((EncoderForPreTraining)model).forward(ids, null, null).MlmLogits[0].narrow(1, Special, V);
        }
        Assert.True(actual.allclose(expected, 0, 1e-5), "head logits differ from the hand computation");
    }

    /// <summary>One post-LN block from the checkpoint's tensors: separate q/k/v matmuls, softmax written out, LayerNorm written out.</summary>
    private static Tensor Block(Dictionary<string, Tensor> w, Layout f, int layer, Tensor x, double eps)
    {
        long hd = H / A;
        Tensor q = Lin(x, w, f.Q(layer)), k = Lin(x, w, f.K(layer)), v = Lin(x, w, f.Vv(layer));   // (T, H) each
        var heads = new List<Tensor>();
        for (int a = 0; a < A; a++)
        {
            var scores = q.narrow(1, a * hd, hd).matmul(k.narrow(1, a * hd, hd).t()) / Math.Sqrt(hd); // (T, T)
            var e = (scores - scores.max(1, keepdim: true).values).exp();
            heads.Add((e / e.sum(1, keepdim: true)).matmul(v.narrow(1, a * hd, hd)));          // (T, hd)
        }
        x = Norm(x + Lin(cat(heads, 1), w, f.O(layer)), w, f.Ln1(layer), eps);                  // (T, H)
        return Norm(x + Lin(Gelu(Lin(x, w, f.Fc1(layer)), f.TanhGelu), w, f.Fc2(layer)), w, f.Ln2(layer), eps);
    }

    private static Tensor Lin(Tensor x, Dictionary<string, Tensor> w, string name) => x.matmul(w[name + ".weight"].t()) + w[name + ".bias"];

    private static Tensor Gelu(Tensor u, bool tanhForm) => tanhForm
        ? 0.5 * u * (1 + tanh(Math.Sqrt(2 / Math.PI) * (u + 0.044715 * u.pow(3))))
        : 0.5 * u * (1 + special.erf(u / Math.Sqrt(2)));

    private static Tensor Norm(Tensor x, Dictionary<string, Tensor> w, string name, double eps)
    {
        var mean = x.mean([1], keepdim: true);
        var variance = (x - mean).pow(2).mean([1], keepdim: true);                             // biased, as LayerNorm
        return (x - mean) / (variance + eps).sqrt() * w[name + ".weight"] + w[name + ".bias"];
    }

    [Theory]
    [InlineData("bert")] [InlineData("roberta")] [InlineData("electra")] [InlineData("albert")]
    public void A_family_model_exported_and_imported_gives_the_same_logits(string type)
    {
        var f = Families[type];
        var family = HfFamilies.ByModelType[type];
        // The family's own model with fresh weights, through export and back: same function on the same weights.
        var shape = WriteCheckpoint(f, "shape");
        var config = family.ReadConfig(shape, Special);
        Tiny.Seed(3);
        using var original = family.Create(shape, config);
        original.eval();
        var dir = Path.Combine(root, "exported");
        family.Export(original, dir, Special, null);
        using var imported = Import(dir);
        // The special rows are not exported (import rebuilds them), so the check reads checkpoint ids and their logits.
        var ids = tensor(new long[] { 40, 45, 55, 41, 50 }).unsqueeze(0);                  // (1, T)
        using var _ = no_grad();
        Tensor Out(nn.Module m) => m is EncoderForPreTraining e
            ? e.forward(ids, null, null).MlmLogits.narrow(-1, Special, V)                      // (1, T, V)
            : ((ElectraDiscriminator)m).forward(ids, null, null);                             // (1, T)
        Assert.True(Out(original).allclose(Out(imported), 0, 1e-6), "logits differ after export and import");
    }

    [Theory]
    [InlineData("bert")] [InlineData("roberta")] [InlineData("albert")]
    public void A_sequence_classifier_checkpoint_round_trips_and_classifies_as_computed_by_hand(string type)
    {
        var f = Families[type];
        var source = WriteCheckpoint(f, "clf", classifier: true);
        using var model = Import(source);
        var classifier = Assert.IsType<SequenceClassifier>(model);
        Assert.Equal(Labels, classifier.Classes);

        var output = Path.Combine(root, "clf-out");
        HfFamilies.Of(source).Export(model, output, Special, null);
        var expected = Safetensors.Read(Path.Combine(source, "model.safetensors")).Where(kv => !Derived(kv.Key)).ToDictionary();
        var actual = Safetensors.Read(Path.Combine(output, "model.safetensors"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected) Assert.True(Tensors.Same(t, actual[name]), $"{name} changed in the round trip");
        Assert.Contains("ForSequenceClassification", File.ReadAllText(Path.Combine(output, "config.json")));

        // [CLS] (position 0) through the whole encoder, then dense + tanh, then the classifier.
        var w = expected;
        var hfIds = tensor(new long[] { 3, 17, 0 });
        using var _ = no_grad();
        double eps = type == "roberta" ? 1e-5 : 1e-12;
        string p = f.Prefix;
        var x = w[p + "embeddings.word_embeddings.weight"].index_select(0, hfIds)
            + w[p + "embeddings.position_embeddings.weight"].narrow(0, f.Offset, 3) + w[p + "embeddings.token_type_embeddings.weight"][0];
        x = Norm(x, w, p + "embeddings.LayerNorm", eps);
        if (f.Projection is { } proj) x = Lin(x, w, proj);
        for (int i = 0; i < L; i++) x = Block(w, f, i, x, eps);
        string pooler = type switch { "roberta" => "classifier.dense", "albert" => "albert.pooler", _ => "bert.pooler.dense" };
        var logits = Lin(Lin(x.narrow(0, 0, 1), w, pooler).tanh(), w, type == "roberta" ? "classifier.out_proj" : "classifier"); // (1, C)
        Assert.True(classifier.Classify((hfIds + Special).unsqueeze(0), null).allclose(logits, 0, 1e-5), "classifier logits differ from the hand computation");
    }

    [Fact]
    public void A_sharded_checkpoint_loads_the_same_weights_and_heads()
    {
        var f = Families["bert"];
        var tensors = ReferenceTensors(f);
        var dir = WriteCheckpoint(f, "sharded");
        File.Delete(Path.Combine(dir, "model.safetensors"));
        int half = tensors.Count / 2;
        Safetensors.Write(Path.Combine(dir, "model-00001-of-00002.safetensors"), tensors.Take(half).ToList());
        Safetensors.Write(Path.Combine(dir, "model-00002-of-00002.safetensors"), tensors.Skip(half).ToList());
        var map = new JsonObject();
        for (int i = 0; i < tensors.Count; i++) map[tensors[i].Key] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = map }.ToJsonString());

        // The heads (here BertForPreTraining's NSP) are read from the index's names.
        using var sharded = Import(dir);
        Assert.Equal(PairObjective.NextSentence, ((EncoderForPreTraining)sharded).Pair);
        using var single = Import(WriteCheckpoint(f, "single", tensors));
        var ids = tensor(new long[] { 40, 45, 55 }).unsqueeze(0);
        using var _ = no_grad();
        Assert.True(Tensors.Same(((EncoderForPreTraining)sharded).forward(ids, null, null).MlmLogits, ((EncoderForPreTraining)single).forward(ids, null, null).MlmLogits));
    }

    [Fact]
    public void Tensorflow_style_layer_norm_names_gamma_and_beta_load_as_weight_and_bias()
    {
        var f = Families["bert"];
        var modern = ReferenceTensors(f);
        var old = modern.Select(kv => KeyValuePair.Create(kv.Key.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"), kv.Value)).ToList();
        Assert.Contains(old, kv => kv.Key == "bert.embeddings.LayerNorm.gamma");
        using var a = Import(WriteCheckpoint(f, "modern", modern));
        using var b = Import(WriteCheckpoint(f, "tf", old));
        var ids = tensor(new long[] { 40, 45, 55 }).unsqueeze(0);
        using var _ = no_grad();
        Assert.True(Tensors.Same(((EncoderForPreTraining)a).forward(ids, null, null).MlmLogits, ((EncoderForPreTraining)b).forward(ids, null, null).MlmLogits));
    }

    [Fact]
    public void Special_rows_copy_the_vocabulary_special_tokens_and_the_mean_row_otherwise()
    {
        var dir = WriteCheckpoint(Families["bert"], "s");
        using var model = Import(dir);
        var word = Safetensors.Read(Path.Combine(dir, "model.safetensors"))["bert.embeddings.word_embeddings.weight"];
        var table = BackboneOf(model).Embeddings.Token.weight!;
        foreach (var (row, source) in new[] { (0, 0), (1, 7), (2, 8), (3, 7), (4, 8), (5, 9) })
            Assert.True(Tensors.Same(table[row], word[source]), $"row {row} is not checkpoint row {source}");
        Assert.True(table[6].allclose(word.mean([0]), 0, 1e-7), "a sentinel row is not the mean row");
    }

    [Theory]
    [InlineData("bert")] [InlineData("albert")]
    public void Missing_and_unmatched_tensors_are_errors_that_name_them(string type)
    {
        var f = Families[type];
        var drop = f.Fc1(0) + ".bias";
        var tensors = ReferenceTensors(f).Where(kv => kv.Key != drop).ToList();
        tensors.Add(KeyValuePair.Create(f.Layer(0) + "gate.weight", zeros(H)));
        var error = Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint(f, "bad", tensors)));
        Assert.Contains($"Missing: {drop}", error.Message);
        Assert.Contains($"Unmatched: {f.Layer(0)}gate.weight", error.Message);
    }

    [Fact]
    public void A_tied_decoder_that_differs_and_a_checkpoint_without_a_head_are_refused_with_the_reason()
    {
        var f = Families["bert"];
        var tensors = ReferenceTensors(f).Select(kv => kv.Key == "cls.predictions.decoder.weight" ? KeyValuePair.Create(kv.Key, kv.Value + 1) : kv).ToList();
        var error = Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint(f, "untied", tensors)));
        Assert.Contains("cls.predictions.decoder.weight differs from bert.embeddings.word_embeddings.weight", error.Message);

        var bare = ReferenceTensors(f).Where(kv => !kv.Key.StartsWith("cls.")).ToList();
        error = Assert.Throws<InvalidDataException>(() => Import(WriteCheckpoint(f, "bare", bare)));
        Assert.Contains("neither a masked-LM head", error.Message);
    }

    [Fact]
    public void Math_the_models_do_not_do_is_refused_naming_the_field()
    {
        var dir = WriteCheckpoint(Families["albert"], "groups");
        var path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["num_hidden_groups"] = 2;
        File.WriteAllText(path, json.ToJsonString());
        Assert.Contains("num_hidden_groups", Assert.Throws<InvalidDataException>(() => Import(dir)).Message);

        dir = WriteCheckpoint(Families["bert"], "relative");
        path = Path.Combine(dir, "config.json");
        json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["position_embedding_type"] = "relative_key";
        File.WriteAllText(path, json.ToJsonString());
        Assert.Contains("position_embedding_type", Assert.Throws<InvalidDataException>(() => Import(dir)).Message);
    }
}
