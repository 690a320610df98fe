namespace DistTrain.Data.Corpora;

/// <summary>One word of a tagged corpus with its part-of-speech tag as the corpus wrote it (Brown tags, e.g. "nn-tl").</summary>
public sealed record TaggedWord(string Word, string Tag);

/// <summary>One sentence of a tagged corpus, in corpus order.</summary>
public sealed record TaggedSentence(IReadOnlyList<TaggedWord> Words)
{
    /// <summary>The sentence as natural text (see <see cref="Detokenizer"/>).</summary>
    public string Text => Detokenizer.Detokenize(this);
}

/// <summary>One document of a tagged corpus: its id (e.g. "ca01"), genre (e.g. "news") and sentences.</summary>
public sealed record CorpusDocument(string Id, string Genre, IReadOnlyList<TaggedSentence> Sentences)
{
    /// <summary>Number of words (corpus tokens) in the document.</summary>
    public int WordCount => Sentences.Sum(s => s.Words.Count);
}
