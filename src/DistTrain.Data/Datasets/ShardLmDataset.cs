using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Language-model sequences cut from a prepared split's <c>text</c> column as one stream (nanoGPT/Megatron packing).</summary>
/// <remarks>
/// The stream is every document's tokens followed by <see cref="SpecialTokens.Sep"/> (the document boundary), in
/// split order. Sequence i is stream tokens [i·(seqLen−2), (i+1)·(seqLen−2)) as "[bos] … [eos]", padded with 0
/// to seqLen (only the last is shorter). Unlike <see cref="PackedLmDataset"/>, which packs whole Brown sentences and
/// cuts only an over-long one, windows here cut documents anywhere: no token is wasted on padding, and a
/// document's continuation is in the next sequence. Item i is found by a binary search over the offsets, so the
/// dataset holds nothing per document and memory stays O(1) whatever the corpus size.
/// </remarks>
public sealed class ShardLmDataset : IIndexedDataset<LmExample>
{
    private readonly ShardSplit _split;
    private readonly int _capacity;
    private readonly long _streamLength;

    /// <summary>Windows of <paramref name="seqLen"/> ids over the text stream of <paramref name="split"/>.</summary>
    public ShardLmDataset(ShardSplit split, int seqLen)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(seqLen, 3);
        if (!split.HasColumn("text")) throw new ArgumentException($"split {split.Name} has no text column (schema is not text or classification)", nameof(split));
        _split = split;
        SeqLen = seqLen;
        _capacity = seqLen - 2;
        _streamLength = split.ColumnLength("text") + split.Count;
        var count = (_streamLength + _capacity - 1) / _capacity;
        if (count > int.MaxValue)
            throw new InvalidOperationException($"split {split.Name} makes {count:N0} sequences of {seqLen}, more than an index can address ({int.MaxValue:N0}); use a longer sequence or split the data");
        Count = (int)count;
    }

    /// <summary>Length of every sequence (real tokens plus pad).</summary>
    public int SeqLen { get; }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public LmExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var start = (long)index * _capacity;
            var end = Math.Min(start + _capacity, _streamLength);
            var ids = new int[SeqLen]; // pad is 0
            ids[0] = SpecialTokens.Bos;
            var n = 1;
            var doc = DocumentAt(start);
            for (var p = start; p < end;)
            {
                var docStart = _split.RowStart("text", doc) + doc; // stream position of the document's first token
                var tokens = _split.RowLength("text", doc);
                var inDoc = p - docStart;
                if (inDoc < tokens)
                {
                    var take = (int)Math.Min(tokens - inDoc, end - p);
                    _split.CopyTokens(_split.RowStart("text", doc) + inDoc, ids.AsSpan(n, take));
                    n += take;
                    p += take;
                }
                else
                {
                    ids[n++] = SpecialTokens.Sep;
                    p++;
                    doc++;
                }
            }
            ids[n++] = SpecialTokens.Eos;
            return new LmExample(ids, n);
        }
    }

    // The last document whose stream start (row offset + its index, one separator per earlier document) is <= position.
    private long DocumentAt(long position)
    {
        long lo = 0, hi = _split.Count - 1;
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            if (_split.RowStart("text", mid) + mid <= position) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }
}
