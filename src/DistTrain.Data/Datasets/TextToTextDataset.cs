using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>
/// A classification dataset rewritten for a text-to-text model (T5): "[cls] text [sep]" becomes "prefix text [eos]"
/// (e.g. "genre: …"), cut to <paramref name="seqLen"/> ids by shortening the text. Labels and indices are unchanged, so
/// stored teacher labels still line up example by example.
/// </summary>
public sealed class TextToTextDataset(IIndexedDataset<ClassificationExample> inner, int[] prefix, int seqLen) : IIndexedDataset<ClassificationExample>
{
    public int Count => inner.Count;

    public ClassificationExample this[int index]
    {
        get
        {
            var ex = inner[index];
            var body = ex.InputIds.Where(id => id is not (SpecialTokens.Cls or SpecialTokens.Sep)).ToArray();
            int room = Math.Max(0, seqLen - prefix.Length - 1);
            return ex with { InputIds = [.. prefix, .. body.AsSpan(0, Math.Min(room, body.Length)), SpecialTokens.Eos] };
        }
    }
}
