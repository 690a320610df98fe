using DistTrain.Data.Datasets;
using DistTrain.Data.Files;
using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Shards;

public sealed class ShardDatasetTests
{
    private static readonly CharTokenizer Chars = new();
    private const int Bos = SpecialTokens.Bos, Eos = SpecialTokens.Eos, Sep = SpecialTokens.Sep, Cls = SpecialTokens.Cls;

    private static int C(char c) => SpecialTokens.Count + c;

    private static PreparedData Prepare(TempFolder tmp, string file, string content, DataSchema schema)
    {
        tmp.Write("d/" + file, content);
        return PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), schema, null, Chars, 1, 0, 0, tmp.File("cache"));
    }

    [Fact]
    public void Lm_windows_equal_the_hand_computed_stream()
    {
        using var tmp = new TempFolder();
        using var data = Prepare(tmp, "a.txt", "ab\n\nc\n\ndefg\n", DataSchema.Text);
        // Stream: a b <sep> c <sep> d e f g <sep> (10 tokens) in windows of 5 - 2 = 3.
        var lm = new ShardLmDataset(data.Train, seqLen: 5);
        Assert.Equal(4, lm.Count);
        Assert.Equal([Bos, C('a'), C('b'), Sep, Eos], lm[0].InputIds);
        Assert.Equal([Bos, C('c'), Sep, C('d'), Eos], lm[1].InputIds);
        Assert.Equal([Bos, C('e'), C('f'), C('g'), Eos], lm[2].InputIds);
        Assert.Equal([Bos, Sep, Eos, 0, 0], lm[3].InputIds);
        Assert.Equal([5, 5, 5, 3], Enumerable.Range(0, 4).Select(i => lm[i].Length));
    }

    [Fact]
    public void Lm_windows_cover_the_stream_exactly_once_on_real_text()
    {
        using var tmp = new TempFolder();
        var docs = Enumerable.Range(0, 60).Select(i => string.Join(' ', Enumerable.Range(0, 1 + i % 13).Select(k => PreparedDataTests.Vocabulary[(i + k) % PreparedDataTests.Vocabulary.Length]))).ToList();
        tmp.Write("d/a.txt", string.Join("\n\n", docs));
        var gpt2 = Tokenizers.Gpt2();
        using var data = PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Text, null, gpt2, 1, 0, 0, tmp.File("cache"));
        var stream = docs.SelectMany(d => gpt2.Encode(d).Append(Sep)).ToList();
        foreach (var seqLen in new[] { 3, 7, 64, 10_000 })
        {
            var lm = new ShardLmDataset(data.Train, seqLen);
            var joined = Enumerable.Range(0, lm.Count).SelectMany(i =>
            {
                var ex = lm[i];
                Assert.Equal(seqLen, ex.InputIds.Length);
                Assert.Equal(Bos, ex.InputIds[0]);
                Assert.Equal(Eos, ex.InputIds[ex.Length - 1]);
                Assert.All(ex.InputIds[ex.Length..], id => Assert.Equal(0, id));
                return ex.InputIds[1..(ex.Length - 1)];
            });
            Assert.Equal(stream, joined);
        }
    }

    [Fact]
    public void Classification_items_are_cls_text_sep_and_skip_unseen_labels()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/train.jsonl", "{\"text\": \"abcdef\", \"label\": \"b\"}\n{\"text\": \"x\", \"label\": \"a\"}\n");
        tmp.Write("d/test.jsonl", "{\"text\": \"q\", \"label\": \"zzz\"}\n{\"text\": \"r\", \"label\": \"a\"}\n");
        using var data = PreparedData.Prepare(DataFileResolver.Resolve(tmp.Path, "d"), DataSchema.Classification, null, Chars, 1, 0, 0, tmp.File("cache"));
        var train = new ShardClassificationDataset(data.Train, maxLength: 5);
        Assert.Equal(2, train.Count);
        Assert.Equal([Cls, C('a'), C('b'), C('c'), Sep], train[0].InputIds);
        Assert.Equal(1, train[0].Label);
        Assert.Equal(0, train[1].Label);
        var test = new ShardClassificationDataset(data.Test, maxLength: 5);
        Assert.Equal(1, test.Count);
        Assert.Equal(1, test.Excluded);
        Assert.Equal([Cls, C('r'), Sep], test[0].InputIds);
    }

    [Fact]
    public void Token_tags_go_on_each_word_s_first_sub_token()
    {
        using var tmp = new TempFolder();
        using var data = Prepare(tmp, "t.jsonl", "{\"tokens\": [\"ab\", \"c\", \"de\"], \"tags\": [\"X\", \"Y\", \"Q\"]}\n", DataSchema.TokenTags);
        Assert.Equal(["Q", "X", "Y"], data.Labels);
        // Words encoded as "ab", " c", " de": ids a b ␠ c ␠ d e, word starts 0, 2, 4.
        Assert.Equal([0, 2, 4], data.Train.Row("word_starts", 0));
        var tags = new ShardTokenTagDataset(data.Train, maxLength: 7);
        var ex = tags[0];
        const int I = TokenClassificationExample.Ignore;
        Assert.Equal([Cls, C('a'), C('b'), C(' '), C('c'), C(' '), Sep], ex.InputIds);
        Assert.Equal([I, 1, I, 2, I, 0, I], ex.Labels); // "de" starts at token 4, cut off with its tag
        var full = new ShardTokenTagDataset(data.Train, maxLength: 32)[0];
        Assert.Equal([I, 1, I, 2, I, 0, I, I, I], full.Labels);
    }

    [Fact]
    public void Instruction_items_mask_the_response_and_cut_the_prompt_s_start()
    {
        using var tmp = new TempFolder();
        using var data = Prepare(tmp, "s.jsonl", "{\"prompt\": \"abcdefgh\", \"response\": \"XY\"}\n{\"prompt\": \"pq\", \"response\": \"RSTUVWXYZ\"}\n", DataSchema.Sft);
        var sft = new ShardInstructionDataset(data.Train, maxLength: 8, Chars);
        var ex = sft[0];
        // Room 6: the response (2) fits with [eos]; the prompt keeps its last 4.
        Assert.Equal([Bos, C('e'), C('f'), C('g'), C('h'), C('X'), C('Y'), Eos], ex.InputIds);
        Assert.Equal([false, false, false, false, false, true, true, true], ex.LossMask);
        Assert.Equal(InstructionKind.User, ex.Kind);
        Assert.Equal("efgh", ex.Prompt);
        Assert.Equal("XY", ex.Answer);
        // A response longer than the room leaves the prompt its quarter (here 1) and loses its end and its [eos].
        var cut = sft[1];
        Assert.Equal([Bos, C('q'), C('R'), C('S'), C('T'), C('U'), C('V'), C('W')], cut.InputIds);
        Assert.Equal([false, false, true, true, true, true, true, true], cut.LossMask);
    }

    [Fact]
    public void Comparison_items_share_the_prompt_and_are_given_pairs()
    {
        using var tmp = new TempFolder();
        using var data = Prepare(tmp, "p.jsonl", "{\"prompt\": \"abcd\", \"chosen\": \"XYZ\", \"rejected\": \"W\"}\n{\"chosen\": \"c\", \"rejected\": \"r\"}\n", DataSchema.Preference);
        var pairs = new ShardComparisonDataset(data.Train, maxLength: 7, Chars);
        var ex = pairs[0];
        // Room 5: the longer response (3) leaves the prompt 2 in both sequences.
        Assert.Equal([Bos, C('c'), C('d'), C('X'), C('Y'), C('Z'), Eos], ex.Chosen);
        Assert.Equal([Bos, C('c'), C('d'), C('W'), Eos], ex.Rejected);
        Assert.Equal(2, ex.PromptLength);
        Assert.Equal(CorruptionKind.Given, ex.Kind);
        Assert.Equal("cdXYZ", ex.ChosenText);
        var noPrompt = pairs[1];
        Assert.Equal([Bos, C('c'), Eos], noPrompt.Chosen);
        Assert.Equal(0, noPrompt.PromptLength);
    }

    [Fact]
    public void Datasets_refuse_splits_of_another_schema()
    {
        using var tmp = new TempFolder();
        using var data = Prepare(tmp, "a.txt", "abc", DataSchema.Text);
        Assert.Contains("no label column", Assert.Throws<ArgumentException>(() => new ShardClassificationDataset(data.Train, 8)).Message);
        Assert.Contains("no response column", Assert.Throws<ArgumentException>(() => new ShardInstructionDataset(data.Train, 8)).Message);
        Assert.Equal(0, new ShardLmDataset(data.Validation, 8).Count);
    }
}
