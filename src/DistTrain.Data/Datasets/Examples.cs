namespace DistTrain.Data.Datasets;

/// <summary>A packed language-modelling sequence: exactly SeqLen ids, real tokens first, then pad.</summary>
/// <param name="Length">Number of real (non-pad) tokens; targets are the ids shifted by one inside it.</param>
public sealed record LmExample(int[] InputIds, int Length);

/// <summary>Two segments "[cls] A [sep] B [sep]" with segment ids 0/1 and a binary label (1 = positive: B follows A / right order).</summary>
public sealed record SentencePairExample(int[] InputIds, int[] SegmentIds, int Label);

/// <summary>A sequence "[cls] text [sep]" with one class label.</summary>
public sealed record ClassificationExample(int[] InputIds, int Label);

/// <summary>A sequence with one label per token; <see cref="Ignore"/> where no loss is taken.</summary>
public sealed record TokenClassificationExample(int[] InputIds, int[] Labels)
{
    /// <summary>The label value cross-entropy ignores (PyTorch's ignore_index convention).</summary>
    public const int Ignore = -100;
}

/// <summary>The kinds of instruction: the three of <see cref="InstructionDataset"/>, and <see cref="User"/> for a user's prompt/response pairs.</summary>
public enum InstructionKind { Genre, PartOfSpeech, MissingWord, User }

/// <summary>"[bos] Question: … Answer: … [eos]" with LossMask true exactly on the answer tokens and the final eos.</summary>
public sealed record InstructionExample(int[] InputIds, bool[] LossMask, InstructionKind Kind, string Prompt, string Answer);

/// <summary>How a rejected text was made from the chosen one; <see cref="Given"/> for a user's own pairs (not a corruption).</summary>
public enum CorruptionKind { ShuffledWords, SwappedSentences, DroppedWords, Given }

/// <summary>A preference pair for reward models or DPO: both "[bos] text [eos]"; for Brown, Chosen is real corpus text and Rejected a corrupted copy.</summary>
/// <param name="PromptLength">Ids after [bos] shared by both sequences as the prompt (0 for Brown pairs, which have none).</param>
public sealed record ComparisonExample(int[] Chosen, int[] Rejected, CorruptionKind Kind, string ChosenText, string RejectedText, int PromptLength = 0);
