using DistTrain.Data.Corpora;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>SpamAssassin mails as "[cls] Subject: … body [sep]", label 1 = spam, 0 = ham; tokenized on access.</summary>
/// <remarks>
/// The input is the Subject plus the body, not the raw headers: Received/Return-Path lines name the servers each
/// collection came through, which would let a model tell the folders apart without reading the mail.
/// </remarks>
public sealed class SpamClassificationDataset(IReadOnlyList<SpamMessage> messages, ITextTokenizer vocabulary, int maxLength)
    : IIndexedDataset<ClassificationExample>
{
    /// <summary>The text a mail is classified by.</summary>
    public static string InputText(SpamMessage message) => $"Subject: {message.Subject}\n\n{message.Body}";

    /// <inheritdoc/>
    public int Count => messages.Count;

    /// <inheritdoc/>
    public ClassificationExample this[int index]
    {
        get
        {
            var text = InputText(messages[index]);
            // Only the first maxLength tokens are kept; 16 characters per token is far above GPT-2's average
            // (about 4), so cutting the text first saves work without shortening the result in practice.
            if (text.Length > maxLength * 16) text = text[..(maxLength * 16)];
            var ids = vocabulary.Encode(text);
            var body = ids.AsSpan(0, Math.Min(ids.Length, maxLength - 2));
            return new ClassificationExample([SpecialTokens.Cls, .. body, SpecialTokens.Sep], messages[index].IsSpam ? 1 : 0);
        }
    }
}
