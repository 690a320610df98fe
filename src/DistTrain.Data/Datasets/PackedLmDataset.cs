using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>Language-modelling sequences packed RoBERTa FULL-SENTENCES style: whole sentences, crossing documents with a sep.</summary>
/// <remarks>
/// Each sequence is "[bos] s1 s2 … [eos]" padded to SeqLen. Sentences are never cut unless one alone is longer
/// than the sequence. When the next document starts inside a sequence, a [sep] marks the boundary (RoBERTa's
/// extra separator), so the model can learn that context does not carry over. Document order is shuffled from
/// the seed once at construction; the training sampler shuffles sequences per epoch.
/// </remarks>
public sealed class PackedLmDataset : IIndexedDataset<LmExample>
{
    private readonly List<int[]> _sequences = [];

    /// <summary>Packs every sentence of <paramref name="corpus"/> into sequences of <paramref name="seqLen"/> ids.</summary>
    public PackedLmDataset(EncodedCorpus corpus, int seqLen, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(seqLen, 8);
        SeqLen = seqLen;
        var capacity = seqLen - 2; // room between bos and eos
        var order = Enumerable.Range(0, corpus.Documents.Count).ToArray();
        SeededRandom.For(seed, 0, stream: SeededRandom.Hash("packed-lm")).Shuffle(order);

        var body = new List<int>(capacity);
        foreach (var d in order)
        {
            var firstOfDocument = true;
            foreach (var sentence in corpus.Documents[d].Sentences)
            {
                // A sentence longer than a whole sequence is the only thing ever cut, into capacity-sized pieces.
                for (var start = 0; start < sentence.Ids.Length; start += capacity)
                {
                    var piece = sentence.Ids.AsSpan(start, Math.Min(capacity, sentence.Ids.Length - start));
                    var needSep = firstOfDocument && body.Count > 0;
                    if (body.Count + (needSep ? 1 : 0) + piece.Length > capacity)
                    {
                        Flush(body);
                        needSep = false;
                    }
                    if (needSep) body.Add(SpecialTokens.Sep);
                    body.AddRange(piece);
                    firstOfDocument = false;
                }
            }
        }
        Flush(body);
    }

    /// <summary>Length of every sequence (real tokens plus pad).</summary>
    public int SeqLen { get; }

    /// <inheritdoc/>
    public int Count => _sequences.Count;

    /// <inheritdoc/>
    public LmExample this[int index]
    {
        get
        {
            var ids = _sequences[index];
            var padded = new int[SeqLen]; // pad is 0
            ids.CopyTo(padded, 0);
            return new LmExample(padded, ids.Length);
        }
    }

    private void Flush(List<int> body)
    {
        if (body.Count == 0) return;
        _sequences.Add([SpecialTokens.Bos, .. body, SpecialTokens.Eos]);
        body.Clear();
    }
}
