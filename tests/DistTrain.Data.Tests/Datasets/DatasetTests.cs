using DistTrain.Data.Datasets;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Tests.Datasets;

public sealed class DatasetTests
{
    private static EncodedCorpus Train => SharedBrown.Train;
    private static SubVocabulary Vocab => SharedBrown.Vocabulary;

    [Fact]
    public void Encoded_sentences_decode_to_the_detokenized_text()
    {
        var doc = Train.Documents[0];
        Assert.Equal(doc.Source.Sentences[0].Text, Vocab.Decode(doc.Sentences[0].Ids));
        Assert.Equal(" " + doc.Source.Sentences[1].Text, Vocab.Decode(doc.Sentences[1].Ids)); // running text
        Assert.Equal(doc.Source.Sentences[0].Words.Count, doc.Sentences[0].WordStarts.Length);
    }

    [Fact]
    public void Packed_sequences_hold_whole_sentences_and_every_token_once()
    {
        var data = new PackedLmDataset(SharedBrown.Validation, seqLen: 128, seed: 3);
        var tokens = 0L;
        for (var i = 0; i < data.Count; i++)
        {
            var ex = data[i];
            Assert.Equal(128, ex.InputIds.Length);
            Assert.Equal(SpecialTokens.Bos, ex.InputIds[0]);
            Assert.Equal(SpecialTokens.Eos, ex.InputIds[ex.Length - 1]);
            Assert.All(ex.InputIds[ex.Length..], id => Assert.Equal(SpecialTokens.Pad, id));
            tokens += ex.InputIds.Take(ex.Length).Count(id => !SpecialTokens.IsSpecial(id));
        }
        var expected = SharedBrown.Validation.Documents.SelectMany(d => d.Sentences).Sum(s => (long)s.Ids.Length);
        Assert.Equal(expected, tokens);
        // Most sequences are nearly full: packing wastes little.
        var fill = Enumerable.Range(0, data.Count).Average(i => data[i].Length);
        Assert.True(fill > 100, $"average fill {fill:F1} of 128");
        Assert.Contains(Enumerable.Range(0, data.Count), i => data[i].InputIds.Contains(SpecialTokens.Sep));
        // Same seed, same sequences.
        var again = new PackedLmDataset(SharedBrown.Validation, 128, 3);
        Assert.Equal(data[7].InputIds, again[7].InputIds);
    }

    [Theory]
    [InlineData(SentencePairTask.NextSentence)]
    [InlineData(SentencePairTask.SentenceOrder)]
    public void Sentence_pairs_are_balanced_segmented_and_deterministic(SentencePairTask task)
    {
        var data = new SentencePairDataset(SharedBrown.Validation, task, maxLength: 64, seed: 11);
        var positives = 0;
        for (var i = 0; i < 2000; i++)
        {
            var ex = data[i];
            Assert.True(ex.InputIds.Length <= 64);
            Assert.Equal(SpecialTokens.Cls, ex.InputIds[0]);
            Assert.Equal(SpecialTokens.Sep, ex.InputIds[^1]);
            var firstSep = Array.IndexOf(ex.InputIds, SpecialTokens.Sep);
            Assert.All(ex.SegmentIds.Take(firstSep + 1), s => Assert.Equal(0, s));
            Assert.All(ex.SegmentIds.Skip(firstSep + 1), s => Assert.Equal(1, s));
            positives += ex.Label;
        }
        Assert.InRange(positives, 900, 1100);
        Assert.Equal(data[42], data[42], SentencePairComparer.Instance);
    }

    [Fact]
    public void Sentence_order_negatives_are_the_positive_swapped()
    {
        var data = new SentencePairDataset(SharedBrown.Validation, SentencePairTask.SentenceOrder, 512, 11);
        var i = Enumerable.Range(0, 100).First(k => data[k].Label == 0);
        var doc = SharedBrown.Validation.Documents[0];
        int[] swapped = [SpecialTokens.Cls, .. doc.Sentences[i + 1].Ids, SpecialTokens.Sep, .. doc.Sentences[i].Ids, SpecialTokens.Sep];
        Assert.Equal(swapped, data[i].InputIds);
    }

    [Fact]
    public void Genre_passages_cover_all_documents_with_their_labels()
    {
        var data = new GenreClassificationDataset(Train, maxLength: 128);
        Assert.Equal(Train.Documents.Count, Enumerable.Range(0, data.Count).Select(data.DocumentOf).Distinct().Count());
        Assert.All(Enumerable.Range(0, data.Count), i => Assert.True(data[i].InputIds.Length <= 128));
        Assert.Equal(15, Enumerable.Range(0, data.Count).Select(i => data[i].Label).Distinct().Count());
        var news = SharedBrown.Corpus.Genres.ToList().IndexOf("news");
        Assert.Equal(news, data[0].Label); // ca01 comes first
    }

    [Fact]
    public void Pos_labels_sit_on_first_sub_tokens_only()
    {
        var tags = TagVocabulary.Build(SharedBrown.Split.Train);
        var data = new PosTaggingDataset(Train, tags, maxLength: 128);
        var sentence = Train.Documents[0].Sentences[0];
        var ex = data[0];
        var labelled = ex.Labels.Select((l, i) => (l, i)).Where(p => p.l != TokenClassificationExample.Ignore).Select(p => p.i - 1);
        Assert.Equal(sentence.WordStarts, labelled);
        Assert.Equal(tags.LabelOf("at"), ex.Labels[1]);                      // "The"
        Assert.Equal("np-tl", tags.Tags[ex.Labels[sentence.WordStarts[1] + 1]]); // "Fulton"
        Assert.Equal(TokenClassificationExample.Ignore, ex.Labels[0]);
        Assert.Equal(TokenClassificationExample.Ignore, ex.Labels[^1]);
        Assert.Equal(TagVocabulary.Other, tags.LabelOf("no-such-tag"));
        // Some word in Brown is longer than one token, so the ignore label also appears inside sentences.
        Assert.Contains(Enumerable.Range(0, 50), i => data[i].Labels[1..^1].Contains(TokenClassificationExample.Ignore));
    }

    [Fact]
    public void Instruction_mask_covers_exactly_the_answer_and_eos()
    {
        var data = new InstructionDataset(Train, maxLength: 256, seed: 5);
        var kinds = new HashSet<InstructionKind>();
        for (var i = 0; i < 300; i++)
        {
            var ex = data[i];
            kinds.Add(ex.Kind);
            Assert.StartsWith("Question: ", ex.Prompt);
            Assert.EndsWith(" Answer:", ex.Prompt);
            var answerIds = ex.InputIds.Where((_, k) => ex.LossMask[k]).ToArray();
            Assert.Equal(SpecialTokens.Eos, answerIds[^1]);
            Assert.Equal(ex.Answer, Vocab.Decode(answerIds[..^1]));
            var promptIds = ex.InputIds.Where((_, k) => !ex.LossMask[k]).ToArray();
            Assert.Equal("<bos>" + ex.Prompt, Vocab.Decode(promptIds));
            Assert.Equal(ex.Prompt + ex.Answer, Vocab.Decode(ex.InputIds, skipSpecials: true));
        }
        Assert.Equal(3, kinds.Count);
        var genre = data[0];
        Assert.Equal(InstructionKind.Genre, genre.Kind);
        Assert.Equal(" news", genre.Answer);
        Assert.Contains("Question: Which genre is this passage from? The Fulton County Grand Jury", genre.Prompt);
        Assert.Equal(data[1].InputIds, new InstructionDataset(Train, 256, 5)[1].InputIds);
    }

    [Fact]
    public void Comparison_pairs_differ_and_are_deterministic()
    {
        var data = new ComparisonDataset(SharedBrown.Validation, seed: 9);
        var again = new ComparisonDataset(SharedBrown.Validation, seed: 9);
        var kinds = new HashSet<CorruptionKind>();
        for (var i = 0; i < 500; i++)
        {
            var ex = data[i];
            kinds.Add(ex.Kind);
            Assert.NotEqual(ex.ChosenText, ex.RejectedText);
            Assert.NotEqual(ex.Chosen, ex.Rejected);
            Assert.Equal(ex.ChosenText, Vocab.Decode(ex.Chosen, skipSpecials: true));
            Assert.Equal(ex.Rejected, again[i].Rejected);
        }
        Assert.Equal(3, kinds.Count);
        var real = SharedBrown.Validation.Documents.SelectMany(d => d.Source.Sentences).Select(s => s.Text).ToHashSet();
        Assert.Contains(Enumerable.Range(0, 50), i => data[i].Kind != CorruptionKind.SwappedSentences && real.Contains(data[i].ChosenText));
    }

    [Fact]
    public void Collate_pads_rows_to_a_fixed_length()
    {
        var batch = Collate.Pad([[1, 2, 3], [4]], 2, SpecialTokens.Pad);
        Assert.Equal([1, 2, 4, 0], batch);
    }

    private sealed class SentencePairComparer : IEqualityComparer<SentencePairExample>
    {
        public static readonly SentencePairComparer Instance = new();
        public bool Equals(SentencePairExample? a, SentencePairExample? b) =>
            a!.Label == b!.Label && a.InputIds.SequenceEqual(b.InputIds) && a.SegmentIds.SequenceEqual(b.SegmentIds);
        public int GetHashCode(SentencePairExample e) => e.Label;
    }
}
