using System.Text;
using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Reports;

/// <summary>The text reports behind `disttrain data info` and `disttrain data vocab-stats` (the figures in docs/data.md).</summary>
public static class DataReports
{
    /// <summary>Corpus counts against the manifest and NLTK's reading, and the split sizes for <paramref name="seed"/>.</summary>
    public static string BrownSummary(BrownCorpus corpus, BrownManifest manifest, ulong seed)
    {
        var sentences = corpus.Documents.Sum(d => d.Sentences.Count);
        var tokens = corpus.Documents.Sum(d => d.WordCount);
        var split = corpus.Split(seed);
        var text = new StringBuilder();
        text.AppendLine($"Brown Corpus from {corpus.Source} ({BrownCorpus.DefaultPath()})");
        text.AppendLine($"{"",-12}{"loaded",12}{"manifest",12}{"NLTK",12}");
        text.AppendLine($"{"documents",-12}{corpus.Documents.Count,12:N0}{manifest.Documents,12:N0}{500,12:N0}");
        text.AppendLine($"{"genres",-12}{corpus.Genres.Count,12:N0}{manifest.Genres,12:N0}{15,12:N0}");
        text.AppendLine($"{"sentences",-12}{sentences,12:N0}{manifest.Sentences,12:N0}{57_340,12:N0}");
        text.AppendLine($"{"tokens",-12}{tokens,12:N0}{manifest.Tokens,12:N0}{1_161_192,12:N0}");
        text.AppendLine($"{"tags",-12}{corpus.Documents.SelectMany(d => d.Sentences).SelectMany(s => s.Words).Select(w => w.Tag).Distinct().Count(),12:N0}{manifest.DistinctTags,12:N0}{472,12:N0}");
        text.AppendLine($"split (seed {seed}): train {split.Train.Count}, validation {split.Validation.Count}, test {split.Test.Count} documents");
        foreach (var genre in corpus.Genres)
            text.AppendLine($"  {genre,-16} {corpus.Documents.Count(d => d.Genre == genre),3} docs: " +
                            $"{split.Train.Count(d => d.Genre == genre)}/{split.Validation.Count(d => d.Genre == genre)}/{split.Test.Count(d => d.Genre == genre)}");
        return text.ToString();
    }

    /// <summary>What the sub-vocabulary saves (parameters) and costs (byte fallback, longer sequences) on train and held-out text.</summary>
    public static string VocabSummary(BrownCorpus corpus, ulong seed, int targetSize, int hidden, FallbackMode fallback,
                                      out SubVocabulary vocabulary)
    {
        var split = corpus.Split(seed);
        vocabulary = CorpusVocabulary.Build(split.Train, targetSize, fallback);
        var train = VocabStats.Measure(vocabulary, split.Train);
        var heldOut = VocabStats.Measure(vocabulary, split.Validation.Concat(split.Test));
        var full = Gpt2Tokenizer.Shared.VocabularySize;
        long Params(int v) => VocabStats.EmbeddingAndSoftmaxParameters(v, hidden);
        var text = new StringBuilder();
        text.AppendLine($"sub-vocabulary: {vocabulary.Size} ids = {SpecialTokens.Count} specials + 256 bytes + " +
                        $"{vocabulary.MergedGpt2Ids.Count} GPT-2 tokens, from {split.Train.Count} train documents (seed {seed}), " +
                        $"fallback {fallback.ToString().ToLowerInvariant()}");
        text.AppendLine($"embedding + untied softmax (2·V·H + V) at H={hidden}: GPT-2 {full:N0} ids → {Params(full):N0}; " +
                        $"sub {vocabulary.Size:N0} ids → {Params(vocabulary.Size):N0} ({1 - (double)Params(vocabulary.Size) / Params(full):P1} fewer)");
        foreach (var (name, s) in new[] { ("train", train), ("held-out", heldOut) })
            text.AppendLine($"{name,-9} GPT-2 tokens {s.Gpt2Tokens:N0} ({s.DistinctGpt2Ids:N0} distinct ids); needing fallback " +
                            $"{s.FallbackGpt2Tokens:N0} = {s.FallbackShare:P2}; sub tokens {s.SubTokens:N0}, length ×{s.LengthGrowth:F4}");
        return text.ToString();
    }
}
