using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>"[cls] text [sep]" for each record of a prepared text split, unlabelled (label −1): what a teacher labels.</summary>
public sealed class ShardTextDataset : IIndexedDataset<ClassificationExample>
{
    /// <summary>The label of an example no one has labelled.</summary>
    public const int Unlabelled = -1;

    private readonly ShardSplit _split;
    private readonly int _maxLength;

    public ShardTextDataset(ShardSplit split, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 3);
        _ = split.Records("text", "text");
        (_split, _maxLength) = (split, maxLength);
    }

    /// <inheritdoc/>
    public int Count => (int)_split.Count;

    /// <inheritdoc/>
    public ClassificationExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var text = _split.Row("text", index);
            return new ClassificationExample([SpecialTokens.Cls, .. text.AsSpan(0, Math.Min(text.Length, _maxLength - 2)), SpecialTokens.Sep], Unlabelled);
        }
    }
}
