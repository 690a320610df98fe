using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>One sentence in sub-vocabulary ids, with the token index where each word starts.</summary>
/// <param name="WordStarts">WordStarts[w] is the index in Ids of word w's first token (one entry per word).</param>
public sealed record EncodedSentence(TaggedSentence Source, int[] Ids, int[] WordStarts);

/// <summary>One document in sub-vocabulary ids.</summary>
public sealed record EncodedDocument(CorpusDocument Source, IReadOnlyList<EncodedSentence> Sentences);

/// <summary>Documents tokenized once, as running text (sentences after the first start with a space), for all datasets.</summary>
public sealed class EncodedCorpus
{
    private EncodedCorpus(IReadOnlyList<EncodedDocument> documents, ITextTokenizer vocabulary, IReadOnlyList<string> genres)
    {
        Documents = documents;
        Vocabulary = vocabulary;
        Genres = genres;
    }

    /// <summary>The documents, in the order given.</summary>
    public IReadOnlyList<EncodedDocument> Documents { get; }

    /// <summary>The tokenizer the ids belong to (a <see cref="SubVocabulary"/> for Brown).</summary>
    public ITextTokenizer Vocabulary { get; }

    /// <summary>Genre names; a genre's index is its class label (pass the full corpus's list so splits agree).</summary>
    public IReadOnlyList<string> Genres { get; }

    /// <summary>Tokenizes <paramref name="documents"/> word piece by word piece, so word boundaries stay known.</summary>
    public static EncodedCorpus Encode(IEnumerable<CorpusDocument> documents, ITextTokenizer vocabulary, IReadOnlyList<string> genres)
    {
        var cache = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var encoded = new List<EncodedDocument>();
        foreach (var doc in documents)
        {
            if (!genres.Contains(doc.Genre)) throw new ArgumentException($"document {doc.Id} has genre '{doc.Genre}' not in the label list");
            var sentences = new EncodedSentence[doc.Sentences.Count];
            for (var s = 0; s < sentences.Length; s++)
            {
                var pieces = Detokenizer.Pieces(doc.Sentences[s], leadingSpace: s > 0);
                var ids = new List<int>(pieces.Length * 2);
                var starts = new int[pieces.Length];
                for (var w = 0; w < pieces.Length; w++)
                {
                    if (!cache.TryGetValue(pieces[w], out var pieceIds)) cache[pieces[w]] = pieceIds = vocabulary.Encode(pieces[w]);
                    starts[w] = ids.Count;
                    ids.AddRange(pieceIds);
                }
                sentences[s] = new EncodedSentence(doc.Sentences[s], ids.ToArray(), starts);
            }
            encoded.Add(new EncodedDocument(doc, sentences));
        }
        return new EncodedCorpus(encoded, vocabulary, genres);
    }

    /// <summary>Label of a genre name.</summary>
    public int GenreLabel(string genre)
    {
        for (var i = 0; i < Genres.Count; i++) if (Genres[i] == genre) return i;
        throw new ArgumentException($"unknown genre '{genre}'");
    }
}
