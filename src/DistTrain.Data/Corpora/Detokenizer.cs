namespace DistTrain.Data.Corpora;

/// <summary>Turns Brown's separate tokens back into natural text: quotes as ", no space before , . ; ? ! ) etc.</summary>
/// <remarks>
/// Text is built as one piece per word, each piece carrying its own leading space. Tokenizing piece by piece
/// keeps a word-to-token alignment (needed for POS labels) while the pieces still concatenate to the text.
/// </remarks>
public static class Detokenizer
{
    // Brown writes opening double quotes as `` and closing ones as ''; plain text uses " for both.
    private static readonly Dictionary<string, string> Surfaces = new(StringComparer.Ordinal)
    {
        ["``"] = "\"", ["''"] = "\"", ["`"] = "'",
    };

    // Tokens written against the previous word ("word," "word.") and tokens the next word sticks to ("(word").
    private static readonly HashSet<string> AttachLeft = new(StringComparer.Ordinal)
    {
        ",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'",
    };
    private static readonly HashSet<string> AttachRight = new(StringComparer.Ordinal) { "``", "`", "(", "[", "{" };

    /// <summary>The sentence as natural text.</summary>
    public static string Detokenize(TaggedSentence sentence) => string.Concat(Pieces(sentence, leadingSpace: false));

    /// <summary>A document's sentences as running text, one space between sentences.</summary>
    public static string Detokenize(IEnumerable<TaggedSentence> sentences) =>
        string.Concat(sentences.SelectMany((s, i) => Pieces(s, leadingSpace: i > 0)));

    /// <summary>One text piece per word (same order and count as the words); concatenated they give the text.</summary>
    /// <param name="leadingSpace">True when the sentence continues running text, so its first word gets a space.</param>
    public static string[] Pieces(TaggedSentence sentence, bool leadingSpace)
    {
        var words = sentence.Words;
        var pieces = new string[words.Count];
        var glueNext = !leadingSpace;
        for (var i = 0; i < words.Count; i++)
        {
            var word = words[i].Word;
            var surface = Surfaces.GetValueOrDefault(word, word);
            pieces[i] = glueNext || (i > 0 && AttachLeft.Contains(word)) ? surface : " " + surface;
            glueNext = AttachRight.Contains(word);
        }
        return pieces;
    }
}
