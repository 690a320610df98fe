using DistTrain.Data.Shards;
using DistTrain.Data.Tokenization;

namespace DistTrain.Data.Datasets;

/// <summary>How a prompt and its response(s) share <c>maxLength</c> ids in "[bos] prompt response [eos]".</summary>
/// <remarks>
/// The response comes first: the prompt loses its start (its end, next to the response, matters most), as
/// <see cref="InstructionDataset"/> does. Only when a response would leave the prompt less than a quarter of the
/// room does the prompt keep that quarter (or all of itself if shorter) and the response lose its end; such a
/// response gets no [eos], since it does not end there.
/// </remarks>
public static class PromptCut
{
    /// <summary>How many of the prompt's last ids to keep so that every response fits as described.</summary>
    public static int PromptKeep(int promptLength, int maxLength, params ReadOnlySpan<int> responseLengths)
    {
        var room = maxLength - 2;
        var floor = Math.Min(promptLength, Math.Max(0, room / 4));
        var keep = promptLength;
        foreach (var r in responseLengths) keep = Math.Min(keep, Math.Max(room - r, floor));
        return Math.Max(0, keep);
    }

    /// <summary>"[bos] prompt[^keep..] response [eos]" cut to <paramref name="maxLength"/>; the [eos] only when the whole response fits.</summary>
    public static int[] Build(int[] prompt, int keep, int[] response, int maxLength)
    {
        var responseRoom = maxLength - 1 - keep;
        if (response.Length + 1 <= responseRoom)
            return [SpecialTokens.Bos, .. prompt.AsSpan(prompt.Length - keep), .. response, SpecialTokens.Eos];
        return [SpecialTokens.Bos, .. prompt.AsSpan(prompt.Length - keep), .. response.AsSpan(0, Math.Max(0, responseRoom))];
    }
}

/// <summary>Supervised fine-tuning pairs from a prepared sft split: "[bos] prompt response [eos]", loss on the response and [eos].</summary>
/// <remarks>Cut as <see cref="PromptCut"/> says. With a tokenizer, Prompt and Answer hold the decoded kept text; without, they are empty.</remarks>
public sealed class ShardInstructionDataset : IIndexedDataset<InstructionExample>
{
    private readonly ShardSplit _split;
    private readonly int _maxLength;
    private readonly ITextTokenizer? _tokenizer;

    /// <param name="tokenizer">Decodes Prompt and Answer; null leaves them empty (training does not read them).</param>
    public ShardInstructionDataset(ShardSplit split, int maxLength, ITextTokenizer? tokenizer = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 4);
        _split = split;
        _maxLength = maxLength;
        _tokenizer = tokenizer;
        Count = split.Records("response", "sft");
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public InstructionExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var prompt = _split.Row("prompt", index);
            var response = _split.Row("response", index);
            var keep = PromptCut.PromptKeep(prompt.Length, _maxLength, response.Length);
            var ids = PromptCut.Build(prompt, keep, response, _maxLength);
            var mask = new bool[ids.Length];
            mask.AsSpan(1 + keep).Fill(true);
            return new InstructionExample(ids, mask, InstructionKind.User,
                _tokenizer?.Decode(ids.Skip(1).Take(keep)) ?? "",
                _tokenizer?.Decode(ids.Skip(1 + keep), skipSpecials: true) ?? "");
        }
    }
}

/// <summary>The user's preference pairs from a prepared preference split: "[bos] prompt chosen [eos]" against "[bos] prompt rejected [eos]".</summary>
/// <remarks>
/// Both sequences keep the same end of the prompt (<see cref="PromptCut"/>), so a causal model's prompt log-probabilities
/// are identical in the two and cancel in a DPO margin; <see cref="ComparisonExample.PromptLength"/> says how long it is.
/// The kind is <see cref="CorruptionKind.Given"/>.
/// </remarks>
public sealed class ShardComparisonDataset : IIndexedDataset<ComparisonExample>
{
    private readonly ShardSplit _split;
    private readonly int _maxLength;
    private readonly ITextTokenizer? _tokenizer;

    /// <param name="tokenizer">Decodes ChosenText and RejectedText; null leaves them empty.</param>
    public ShardComparisonDataset(ShardSplit split, int maxLength, ITextTokenizer? tokenizer = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 4);
        _split = split;
        _maxLength = maxLength;
        _tokenizer = tokenizer;
        Count = split.Records("chosen", "preference");
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public ComparisonExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var prompt = _split.Row("prompt", index);
            var chosen = _split.Row("chosen", index);
            var rejected = _split.Row("rejected", index);
            var keep = PromptCut.PromptKeep(prompt.Length, _maxLength, chosen.Length, rejected.Length);
            var c = PromptCut.Build(prompt, keep, chosen, _maxLength);
            var r = PromptCut.Build(prompt, keep, rejected, _maxLength);
            return new ComparisonExample(c, r, CorruptionKind.Given,
                _tokenizer?.Decode(c, skipSpecials: true) ?? "", _tokenizer?.Decode(r, skipSpecials: true) ?? "", keep);
        }
    }
}
