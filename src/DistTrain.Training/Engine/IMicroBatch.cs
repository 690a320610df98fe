using DistTrain.Models;

namespace DistTrain.Training.Engine;

/// <summary>
/// One micro-batch, collated onto the device, whose target counts are known from the data before any forward
/// pass (masked tokens, answer tokens, sequences, pairs). Knowing them first lets the trainer all-reduce the
/// counts, then backpropagate each part's SUM divided by its GLOBAL count: exactly the loss of the whole
/// global batch, for composite objectives too (BERT MLM + NSP, ELECTRA MLM + λ·RTD), on any number of ranks.
/// </summary>
public interface IMicroBatch : IDisposable
{
    /// <summary>Targets per loss part, in the order of <see cref="LossTerms.Parts"/> (one entry for a single-part loss).</summary>
    IReadOnlyList<long> PartCounts { get; }

    /// <summary>Forward pass; must report the same counts as <see cref="PartCounts"/>.</summary>
    LossTerms Loss();
}
