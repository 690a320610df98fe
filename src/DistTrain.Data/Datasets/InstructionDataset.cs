using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Instruction-tuning examples "Question: … Answer: …" whose answers come from the corpus itself.</summary>
/// <remarks>
/// Three questions, taken in turn by example index: which genre a passage is from, the Brown tag of a word in a
/// sentence, and which word fills a blank. The loss mask covers the answer and the closing [eos] only, so the
/// model learns to answer and to stop, not to reproduce the prompt.
/// </remarks>
public sealed class InstructionDataset : IIndexedDataset<InstructionExample>
{
    /// <summary>Sentences longer than this are not used, so every prompt stays short.</summary>
    public const int MaxWords = 48;

    private readonly EncodedCorpus _corpus;
    private readonly (int Doc, int Sentence)[] _anchors;
    private readonly ulong _seed;
    private readonly int _maxLength;

    /// <summary>One example per usable sentence (3 to <see cref="MaxWords"/> words with a word to ask about).</summary>
    public InstructionDataset(EncodedCorpus corpus, int maxLength, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 32);
        _corpus = corpus;
        _maxLength = maxLength;
        _seed = seed ^ SeededRandom.Hash("instruction");
        _anchors = corpus.Documents
            .SelectMany((d, di) => d.Sentences.Select((s, si) => (di, si, s.Source)))
            .Where(a => a.Source.Words.Count is >= 3 and <= MaxWords && AskableWords(a.Source).Length > 0)
            .Select(a => (a.di, a.si))
            .ToArray();
    }

    /// <inheritdoc/>
    public int Count => _anchors.Length;

    /// <inheritdoc/>
    public InstructionExample this[int index]
    {
        get
        {
            var (d, s) = _anchors[index];
            var doc = _corpus.Documents[d].Source;
            var sentence = doc.Sentences[s];
            var rng = SeededRandom.For(_seed, (ulong)index);
            var kind = (InstructionKind)(index % 3);
            var (prompt, answer) = kind switch
            {
                InstructionKind.Genre => GenreQuestion(doc, s),
                InstructionKind.PartOfSpeech => PosQuestion(sentence, rng),
                _ => MissingWordQuestion(sentence, rng),
            };
            return Build(kind, prompt, answer);
        }
    }

    private static (string, string) GenreQuestion(CorpusDocument doc, int first)
    {
        // A passage of whole sentences from this one on, up to MaxWords words (at least the first sentence).
        var sentences = new List<TaggedSentence>();
        var words = 0;
        for (var i = first; i < doc.Sentences.Count && (sentences.Count == 0 || words + doc.Sentences[i].Words.Count <= MaxWords); i++)
        {
            sentences.Add(doc.Sentences[i]);
            words += doc.Sentences[i].Words.Count;
        }
        return ($"Question: Which genre is this passage from? {Detokenizer.Detokenize(sentences)} Answer:",
                " " + doc.Genre.Replace('_', ' '));
    }

    private static (string, string) PosQuestion(TaggedSentence sentence, SeededRandom rng)
    {
        var candidates = AskableWords(sentence);
        var word = sentence.Words[candidates[rng.Next(candidates.Length)]];
        return ($"Question: What is the part of speech of the word \"{word.Word}\" in: {sentence.Text} Answer:", " " + word.Tag);
    }

    private static (string, string) MissingWordQuestion(TaggedSentence sentence, SeededRandom rng)
    {
        var candidates = AskableWords(sentence);
        var w = candidates[rng.Next(candidates.Length)];
        var blanked = new TaggedSentence(sentence.Words.Select((x, i) => i == w ? x with { Word = "___" } : x).ToArray());
        return ($"Question: Which word fills the blank in: {blanked.Text} Answer:", " " + sentence.Words[w].Word);
    }

    // Words worth asking about: containing a letter, and (so the answer is unambiguous) every occurrence of the
    // word in the sentence carries the same tag.
    private static int[] AskableWords(TaggedSentence sentence) =>
        sentence.Words.Select((w, i) => (w, i))
            .Where(p => p.w.Word.Any(char.IsLetter)
                        && sentence.Words.Where(o => o.Word == p.w.Word).All(o => o.Tag == p.w.Tag))
            .Select(p => p.i)
            .ToArray();

    private InstructionExample Build(InstructionKind kind, string prompt, string answer)
    {
        var vocab = _corpus.Vocabulary;
        var promptIds = vocab.Encode(prompt);
        var answerIds = vocab.Encode(answer);
        // Prompt and answer are encoded apart; GPT-2 never merges across the space that starts the answer, so
        // this equals encoding the whole text, and the mask boundary is exact.
        var room = _maxLength - 2 - answerIds.Length;
        if (room < 8) throw new InvalidOperationException($"answer '{answer}' leaves no room for its prompt in {_maxLength} tokens");
        // A prompt too long (rare: byte-spelled words) loses its start; the question's end and the answer stay.
        var promptPart = promptIds.AsSpan(Math.Max(0, promptIds.Length - room));
        int[] ids = [SpecialTokens.Bos, .. promptPart, .. answerIds, SpecialTokens.Eos];
        var mask = new bool[ids.Length];
        mask.AsSpan(1 + promptPart.Length).Fill(true);
        return new InstructionExample(ids, mask, kind, prompt, answer);
    }
}
