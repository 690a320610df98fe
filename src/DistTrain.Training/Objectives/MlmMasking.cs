using DistTrain.Data;
using DistTrain.Data.Tokenization;

namespace DistTrain.Training.Objectives;

/// <summary>
/// BERT's masking, drawn anew for every example and epoch (RoBERTa's dynamic masking): each real, non-special
/// token is selected with probability p; of those, 80% become [MASK], 10% a random token, 10% stay. Labels hold
/// the original id at selected positions and −100 elsewhere. The draw is a pure function of (seed, epoch,
/// example), so a rank computes the same masks for an example whichever rank or step it falls on.
/// </summary>
public static class MlmMasking
{
    public const int Ignore = -100;

    public static (int[] Input, int[] Labels) Apply(int[] ids, double probability, int vocabSize, ulong seed, int epoch, int example)
    {
        var rng = SeededRandom.For(seed ^ (ulong)epoch * 0x9E3779B97F4A7C15UL, (ulong)example, stream: 0x4D4C4D);   // "MLM"
        var input = (int[])ids.Clone();
        var labels = new int[ids.Length];
        Array.Fill(labels, Ignore);
        int firstOrdinary = SpecialTokens.Count;
        for (int i = 0; i < ids.Length; i++)
        {
            if (SpecialTokens.IsSpecial(ids[i]) || rng.NextDouble() >= probability) continue;
            labels[i] = ids[i];
            double r = rng.NextDouble();
            if (r < 0.8) input[i] = SpecialTokens.Mask;
            else if (r < 0.9) input[i] = firstOrdinary + rng.Next(vocabSize - firstOrdinary);
        }
        return (input, labels);
    }
}
