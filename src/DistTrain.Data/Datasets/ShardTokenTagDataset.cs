using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>"[cls] tokens [sep]" with each word's tag id on its first sub-token (as <see cref="PosTaggingDataset"/>), from a prepared token-tags split.</summary>
/// <remarks>
/// Other sub-tokens, [cls], [sep], and words whose tag never occurs in training (stored as −1, reported by
/// <see cref="PreparedData.UnseenLabels"/>) get <see cref="TokenClassificationExample.Ignore"/>: no class exists for them,
/// so they are neither trained on nor scored. Words past <c>maxLength</c> − 2 tokens are cut.
/// </remarks>
public sealed class ShardTokenTagDataset : IIndexedDataset<TokenClassificationExample>
{
    private readonly ShardSplit _split;
    private readonly int _maxLength;

    /// <summary>One example per record of <paramref name="split"/>, cut to <paramref name="maxLength"/> ids.</summary>
    public ShardTokenTagDataset(ShardSplit split, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 3);
        _split = split;
        _maxLength = maxLength;
        Count = split.Records("tags", "token_tags");
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public TokenClassificationExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var tokens = _split.Row("ids", index);
            var starts = _split.Row("word_starts", index);
            var tags = _split.Row("tags", index);
            var n = Math.Min(tokens.Length, _maxLength - 2);
            var ids = new int[n + 2];
            var labels = new int[n + 2];
            Array.Fill(labels, TokenClassificationExample.Ignore);
            ids[0] = SpecialTokens.Cls;
            tokens.AsSpan(0, n).CopyTo(ids.AsSpan(1));
            ids[^1] = SpecialTokens.Sep;
            for (var w = 0; w < starts.Length && starts[w] < n; w++)
                if (tags[w] >= 0 && (w + 1 == starts.Length || starts[w + 1] > starts[w])) labels[starts[w] + 1] = tags[w];
            return new TokenClassificationExample(ids, labels);
        }
    }
}
