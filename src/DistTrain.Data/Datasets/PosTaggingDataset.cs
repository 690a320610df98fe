using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>The POS tag labels of a training split: label 0 is "&lt;other&gt;" for tags the split never saw, then tags in ordinal order.</summary>
public sealed class TagVocabulary
{
    /// <summary>Label of a tag absent from the training split.</summary>
    public const int Other = 0;

    private readonly Dictionary<string, int> _labels;

    private TagVocabulary(IReadOnlyList<string> tags)
    {
        Tags = tags;
        _labels = tags.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
    }

    /// <summary>Tag names by label (index 0 is "&lt;other&gt;").</summary>
    public IReadOnlyList<string> Tags { get; }

    /// <summary>The tags of <paramref name="train"/> (held-out tags must not add classes).</summary>
    public static TagVocabulary Build(IEnumerable<CorpusDocument> train) =>
        new(["<other>", .. train.SelectMany(d => d.Sentences).SelectMany(s => s.Words).Select(w => w.Tag)
                                .Distinct().Order(StringComparer.Ordinal)]);

    /// <summary>Label of <paramref name="tag"/>, or <see cref="Other"/>.</summary>
    public int LabelOf(string tag) => _labels.GetValueOrDefault(tag, Other);
}

/// <summary>Sentences for POS tagging: the word's tag on its first sub-token, <see cref="TokenClassificationExample.Ignore"/> elsewhere.</summary>
public sealed class PosTaggingDataset : IIndexedDataset<TokenClassificationExample>
{
    private readonly EncodedSentence[] _sentences;
    private readonly TagVocabulary _tags;
    private readonly int _maxLength;

    /// <summary>One example per sentence of <paramref name="corpus"/>, as "[cls] tokens [sep]", cut to <paramref name="maxLength"/>.</summary>
    public PosTaggingDataset(EncodedCorpus corpus, TagVocabulary tags, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 3);
        _sentences = corpus.Documents.SelectMany(d => d.Sentences).ToArray();
        _tags = tags;
        _maxLength = maxLength;
    }

    /// <inheritdoc/>
    public int Count => _sentences.Length;

    /// <inheritdoc/>
    public TokenClassificationExample this[int index]
    {
        get
        {
            var sentence = _sentences[index];
            var n = Math.Min(sentence.Ids.Length, _maxLength - 2);
            var ids = new int[n + 2];
            var labels = new int[n + 2];
            Array.Fill(labels, TokenClassificationExample.Ignore);
            ids[0] = SpecialTokens.Cls;
            sentence.Ids.AsSpan(0, n).CopyTo(ids.AsSpan(1));
            ids[^1] = SpecialTokens.Sep;
            for (var w = 0; w < sentence.WordStarts.Length && sentence.WordStarts[w] < n; w++)
                labels[sentence.WordStarts[w] + 1] = _tags.LabelOf(sentence.Source.Words[w].Tag);
            return new TokenClassificationExample(ids, labels);
        }
    }
}
