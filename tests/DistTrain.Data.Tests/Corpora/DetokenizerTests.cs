using DistTrain.Data.Corpora;

namespace DistTrain.Data.Tests.Corpora;

public sealed class DetokenizerTests
{
    private static TaggedSentence Sentence(string words) =>
        new(words.Split(' ').Select(w => new TaggedWord(w, "x")).ToArray());

    [Fact]
    public void Quotes_and_punctuation_attach_like_written_English()
    {
        var s = Sentence("`` Only a relative handful of such reports was received '' , the jury said ( in part ) .");
        Assert.Equal("\"Only a relative handful of such reports was received\", the jury said (in part).", s.Text);
    }

    [Fact]
    public void First_Brown_sentence_reads_naturally()
    {
        Assert.Equal(
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced " +
            "\"no evidence\" that any irregularities took place.",
            SharedBrown.Corpus.Documents[0].Sentences[0].Text);
    }

    [Fact]
    public void Pieces_concatenate_to_the_text_and_carry_sentence_spacing()
    {
        var s = Sentence("Yes , he said .");
        Assert.Equal(["Yes", ",", " he", " said", "."], Detokenizer.Pieces(s, leadingSpace: false));
        Assert.Equal(" Yes", Detokenizer.Pieces(s, leadingSpace: true)[0]);
        Assert.Equal("Yes, he said. Yes, he said.", Detokenizer.Detokenize([s, s]));
    }
}
