namespace DistTrain.Data.Corpora;

/// <summary>A corpus file is corrupt or truncated; the message names the file, the line and what was wrong.</summary>
public sealed class CorpusFormatException(string file, int line, string problem)
    : Exception($"{file}:{line}: {problem}")
{
    /// <summary>Path of the file that failed to parse.</summary>
    public string File { get; } = file;

    /// <summary>1-based line number (of the decompressed text) where parsing failed; 0 for the whole file.</summary>
    public int Line { get; } = line;
}
