namespace DistTrain.Data.Tokenization;

/// <summary>A tokenizer a job declares: ids [0, <see cref="SpecialTokens.Count"/>) are always DistTrain's fixed specials.</summary>
/// <remarks>
/// Text never encodes to a special id, whatever it says (<c>&lt;pad&gt;</c> is spelled as text), so the specials
/// the datasets insert can never be forged by data. Implementations are immutable and safe to use from several threads.
/// </remarks>
public interface ITextTokenizer
{
    /// <summary>"subvocab", "gpt2", "bpe" or "wordpiece".</summary>
    string Kind { get; }

    /// <summary>Stable and content-derived ("gpt2", "subvocab:sha256:…", "bpe:sha256:…"): a cache key, and what a checkpoint is checked against.</summary>
    string Identity { get; }

    /// <summary>The model's vocabulary size, specials included.</summary>
    int Size { get; }

    /// <summary>Ids of <paramref name="text"/>; never special ids.</summary>
    int[] Encode(string text);

    /// <summary>Text of <paramref name="ids"/>; specials are written as their names (<c>&lt;eos&gt;</c>) unless skipped.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecials = false);

    /// <summary>Writes this tokenizer's files and the <see cref="Tokenizers.FileName"/> descriptor into <paramref name="directory"/> (created if needed).</summary>
    void Save(string directory);
}
