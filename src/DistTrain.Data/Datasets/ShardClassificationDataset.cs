using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>"[cls] text [sep]" with its label id (an index into <see cref="PreparedData.Labels"/>) from a prepared classification split.</summary>
/// <remarks>
/// The text is cut to <c>maxLength</c> ids. Held-out records whose label never occurs in training (stored as −1)
/// are left out: no class exists for them. <see cref="PreparedData.UnseenLabels"/> reports them. Only when the split
/// has such records is a table of the kept record indices built (4 bytes per record).
/// </remarks>
public sealed class ShardClassificationDataset : IIndexedDataset<ClassificationExample>
{
    private readonly ShardSplit _split;
    private readonly int _maxLength;
    private readonly int[]? _kept; // record index of each example, when some records are left out

    /// <summary>One example per record of <paramref name="split"/> whose label is in the training set, cut to <paramref name="maxLength"/> ids.</summary>
    public ShardClassificationDataset(ShardSplit split, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 3);
        _ = split.Records("label", "classification");
        _split = split;
        _maxLength = maxLength;
        var unseen = 0;
        for (long r = 0; r < split.Count; r++) if (split.Value("label", r) < 0) unseen++;
        if (unseen > 0)
        {
            _kept = new int[split.Count - unseen];
            for (int r = 0, k = 0; r < split.Count; r++) if (split.Value("label", r) >= 0) _kept[k++] = r;
        }
        Count = (int)split.Count - unseen;
        Excluded = unseen;
    }

    /// <summary>Records left out because their label is not in the training label set.</summary>
    public int Excluded { get; }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public ClassificationExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            long record = _kept?[index] ?? index;
            var text = _split.Row("text", record);
            var body = text.AsSpan(0, Math.Min(text.Length, _maxLength - 2));
            return new ClassificationExample([SpecialTokens.Cls, .. body, SpecialTokens.Sep], _split.Value("label", record));
        }
    }
}
