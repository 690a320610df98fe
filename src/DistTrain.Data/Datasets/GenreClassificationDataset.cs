using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Passages (runs of whole sentences of one document) labelled with the document's genre (15 classes).</summary>
/// <remarks>Every sentence belongs to exactly one passage, so an epoch sees each document's text once.</remarks>
public sealed class GenreClassificationDataset : IIndexedDataset<ClassificationExample>
{
    private readonly List<(int[] Ids, int Label, string DocumentId)> _passages = [];

    /// <summary>Cuts every document of <paramref name="corpus"/> into passages of at most <paramref name="maxLength"/> ids with [cls]/[sep].</summary>
    public GenreClassificationDataset(EncodedCorpus corpus, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 8);
        var capacity = maxLength - 2;
        var body = new List<int>(capacity);
        foreach (var doc in corpus.Documents)
        {
            var label = corpus.GenreLabel(doc.Source.Genre);
            foreach (var sentence in doc.Sentences)
            {
                if (body.Count > 0 && body.Count + sentence.Ids.Length > capacity) Flush(label, doc.Source.Id);
                // A sentence longer than a passage is cut to fit; the rest of it is dropped rather than orphaned.
                body.AddRange(sentence.Ids.AsSpan(0, Math.Min(capacity, sentence.Ids.Length)));
            }
            Flush(label, doc.Source.Id);
        }

        void Flush(int label, string docId)
        {
            if (body.Count == 0) return;
            _passages.Add(([SpecialTokens.Cls, .. body, SpecialTokens.Sep], label, docId));
            body.Clear();
        }
    }

    /// <inheritdoc/>
    public int Count => _passages.Count;

    /// <inheritdoc/>
    public ClassificationExample this[int index] => new(_passages[index].Ids.ToArray(), _passages[index].Label);

    /// <summary>The document a passage came from.</summary>
    public string DocumentOf(int index) => _passages[index].DocumentId;
}
