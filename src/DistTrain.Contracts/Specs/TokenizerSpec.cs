namespace DistTrain.Contracts.Specs;

/// <summary>Which tokenizer a job declares (YAML <c>tokenizer: {kind: …}</c>).</summary>
public enum TokenizerKind
{
    /// <summary>A frequency-pruned GPT-2 BPE built from the job's own training data (the default).</summary>
    Subvocab,
    /// <summary>The full GPT-2 byte-level BPE, 50,257 ids after DistTrain's 38 special ids.</summary>
    Gpt2,
    /// <summary>The user's own files under the data root: byte-level BPE (<c>vocab.json</c> + <c>merges.txt</c>, or <c>tokenizer.json</c>) or BERT WordPiece (<c>vocab.txt</c>).</summary>
    Files,
}

/// <summary>The job's tokenizer: one per job, saved with every checkpoint and reused by every stage that reads text.</summary>
/// <param name="Size">Subvocab only: ids to keep, specials included; null keeps each stage's <c>model.vocab_size</c>.</param>
/// <param name="Path">Files only: a folder or a <c>tokenizer.json</c>, relative to the data root.</param>
public sealed record TokenizerSpec(TokenizerKind Kind, int? Size = null, string? Path = null)
{
    /// <summary>DistTrain's special ids (pad, bos, eos, cls, sep, mask and 32 sentinels) come before every tokenizer's own ids.</summary>
    public const int SpecialIds = 38;

    /// <summary>Model vocabulary of the full GPT-2 tokenizer: its 50,257 ids after the special ids.</summary>
    public const int Gpt2Size = 50_257 + SpecialIds;

    /// <summary>The model vocabulary this tokenizer fixes without reading a file, or null (subvocab without a size, or files).</summary>
    public int? KnownSize => Kind switch
    {
        TokenizerKind.Gpt2 => Gpt2Size,
        TokenizerKind.Subvocab => Size,
        _ => null,
    };

    /// <summary>What a job without a <c>tokenizer:</c> section uses: a sub-vocabulary of each stage's <c>model.vocab_size</c>.</summary>
    public static TokenizerSpec Default { get; } = new(TokenizerKind.Subvocab);
}
