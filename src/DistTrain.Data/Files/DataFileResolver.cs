using System.Text.RegularExpressions;
using DistTrain.Data.Splits;

namespace DistTrain.Data.Files;

/// <summary>Turns a spec's <c>data.path</c> (a file, a folder or a glob under the data root) into files by split.</summary>
/// <remarks>
/// <para><b>Which files.</b> A file is taken as it is. A folder means every data file under it, at any depth;
/// files with other extensions (README.md, .gitattributes) and the JSON metadata HF folders hold (dataset_info.json,
/// dataset_infos.json, state.json, config.json, tokenizer.json, …) are skipped there, and hidden files and folders
/// (".name") are never read. A glob (<c>*</c> and <c>?</c> within one path segment, <c>**</c>
/// across segments, matched against the path relative to the data root) must match data files only. The data
/// extensions are <see cref="SupportedExtensions"/>.</para>
/// <para><b>Which split.</b> HF datasets' convention: a file whose name without extensions is <c>train</c>,
/// <c>validation</c> (also <c>valid</c>, <c>val</c>, <c>dev</c>) or <c>test</c>, optionally with a shard suffix
/// (<c>train-00000-of-00003</c>, also followed by a hash as HF writes it), or any file inside a folder of such a
/// name (below the resolved path), belongs to that split: the data is presplit. If no file is named so, every file
/// is training data and the caller splits records by seed (<see cref="DataSplitter"/>). Mixing the two (some
/// files named by split, others not) is an error, since the unnamed files' role would be a guess.</para>
/// <para>Within a split, files are read in ordinal order of their path, so every worker reads the same order.</para>
/// </remarks>
public static class DataFileResolver
{
    /// <summary>The extensions a data file may have.</summary>
    public static IReadOnlyList<string> SupportedExtensions { get; } = [".txt", ".jsonl", ".jsonl.gz", ".json", ".parquet"];

    private static readonly Regex SplitStem = new(
        @"^(?<split>train|training|validation|valid|val|dev|test|testing)(-\d{5}-of-\d{5}(-[0-9a-f]+)?)?$",
        RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

    /// <summary>The files <paramref name="path"/> names, by split.</summary>
    /// <param name="dataRoot">Absolute folder every data path is relative to (the lead checks the path stays inside it).</param>
    /// <param name="path">A file, a folder or a glob, relative to <paramref name="dataRoot"/>.</param>
    /// <exception cref="DataFormatException">Nothing matches, an unsupported extension, or files partly named by split.</exception>
    public static DataFileSet Resolve(string dataRoot, string path)
    {
        var root = Path.GetFullPath(dataRoot);
        var full = Path.GetFullPath(Path.Combine(root, path));
        List<string> files;
        string baseDir;
        if (path.IndexOfAny(['*', '?']) >= 0)
        {
            var pattern = GlobRegex(path.Replace('\\', '/'));
            var start = GlobBase(root, path);
            baseDir = start;
            files = !Directory.Exists(start) ? [] : Directory.EnumerateFiles(start, "*", Recursive)
                .Where(f => !IsHidden(Path.GetRelativePath(root, f)) && pattern.IsMatch(Path.GetRelativePath(root, f).Replace('\\', '/')))
                .ToList();
            if (files.Count == 0) throw new DataFormatException($"{path}: the pattern matches no file under {root}");
            RequireSupported(files, root);
        }
        else if (File.Exists(full))
        {
            files = [full];
            baseDir = Path.GetDirectoryName(full)!;
            RequireSupported(files, root);
        }
        else if (Directory.Exists(full))
        {
            baseDir = full;
            var all = Directory.EnumerateFiles(full, "*", Recursive)
                .Where(f => !IsHidden(Path.GetRelativePath(full, f))).ToList();
            files = all.Where(f => ExtensionOf(f) is not null && !MetadataFiles.Contains(Path.GetFileName(f))).ToList();
            if (files.Count == 0)
                throw new DataFormatException($"{path}: the folder holds no data files ({Supported}); found: " +
                    (all.Count == 0 ? "nothing" : string.Join(", ", all.Take(10).Select(f => Path.GetRelativePath(full, f)))));
        }
        else throw new DataFormatException($"{path}: no such file or folder under {root}");

        files.Sort(StringComparer.Ordinal);
        var bySplit = files.Select(f => (File: f, Split: SplitOf(f, baseDir))).ToList();
        if (bySplit.All(p => p.Split is null)) return new DataFileSet(files, [], [], Presplit: false) { Root = root };
        var unnamed = bySplit.Where(p => p.Split is null).Select(p => Path.GetRelativePath(root, p.File)).ToList();
        if (unnamed.Count > 0)
            throw new DataFormatException($"{path}: some files are named by split (train/validation/test) and some are not: {string.Join(", ", unnamed.Take(5))}; " +
                                          "name every file (or its folder) by split, or none of them to split by seed");
        IReadOnlyList<string> Of(SplitName s) => bySplit.Where(p => p.Split == s).Select(p => p.File).ToList();
        var set = new DataFileSet(Of(SplitName.Train), Of(SplitName.Validation), Of(SplitName.Test), Presplit: true) { Root = root };
        if (set.Train.Count == 0)
            throw new DataFormatException($"{path}: the files are named by split but none is train (found {string.Join(", ", files.Select(f => Path.GetRelativePath(root, f)).Take(5))})");
        return set;
    }

    /// <summary>The split a file's name (or a folder between <paramref name="baseDir"/> and it) declares, or null.</summary>
    public static SplitName? SplitOf(string file, string baseDir)
    {
        var stem = StripExtensions(Path.GetFileName(file));
        if (Named(stem) is { } s) return s;
        var relative = Path.GetRelativePath(baseDir, Path.GetDirectoryName(file)!);
        if (relative == ".") return null;
        foreach (var folder in relative.Split(Path.DirectorySeparatorChar).Reverse())
            if (Named(folder) is { } f) return f;
        return null;
    }

    /// <summary>The supported extension of <paramref name="file"/> (".jsonl.gz" counts as one), or null.</summary>
    public static string? ExtensionOf(string file)
    {
        var name = Path.GetFileName(file).ToLowerInvariant();
        return SupportedExtensions.Where(e => name.EndsWith(e, StringComparison.Ordinal)).MaxBy(e => e.Length);
    }

    private static SplitName? Named(string stem)
    {
        var m = SplitStem.Match(stem);
        if (!m.Success) return null;
        return m.Groups["split"].Value.ToLowerInvariant() switch
        {
            "train" or "training" => SplitName.Train,
            "test" or "testing" => SplitName.Test,
            _ => SplitName.Validation,
        };
    }

    private static string StripExtensions(string name)
    {
        var ext = ExtensionOf(name);
        if (ext is not null) return name[..^ext.Length];
        var dot = name.IndexOf('.');
        return dot > 0 ? name[..dot] : name;
    }

    // Hidden entries (".name", such as a prepared-data cache kept under the data root) are skipped, and hidden
    // folders are not even listed.
    private static readonly EnumerationOptions Recursive = new()
    {
        RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System, IgnoreInaccessible = false,
    };

    // JSON files that sit beside data in HF dataset and model folders but are not records.
    private static readonly HashSet<string> MetadataFiles = new(StringComparer.OrdinalIgnoreCase)
    {
        "dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json", "config.json", "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "package.json", "manifest.json",
    };

    private static string Supported => string.Join(", ", SupportedExtensions);

    private static void RequireSupported(IEnumerable<string> files, string root)
    {
        var bad = files.FirstOrDefault(f => ExtensionOf(f) is null);
        if (bad is not null)
            throw new DataFormatException($"{Path.GetRelativePath(root, bad)}: unsupported file type '{Path.GetExtension(bad)}'; supported: {Supported}");
    }

    private static bool IsHidden(string relative) =>
        relative.Split('/', '\\').Any(part => part.Length > 1 && part[0] == '.' && part != "..");

    // The folder above the first segment with a wildcard: only that subtree needs listing.
    private static string GlobBase(string root, string glob)
    {
        var segments = glob.Replace('\\', '/').Split('/');
        var fixedPart = segments.TakeWhile(s => s.IndexOfAny(['*', '?']) < 0).ToArray();
        return Path.GetFullPath(Path.Combine([root, .. fixedPart.Take(Math.Min(fixedPart.Length, segments.Length - 1))]));
    }

    private static Regex GlobRegex(string glob)
    {
        var sb = new System.Text.StringBuilder("^");
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            if (c == '*' && i + 1 < glob.Length && glob[i + 1] == '*')
            {
                // "**/" matches zero or more whole folders; a trailing "**" anything below.
                if (i + 2 < glob.Length && glob[i + 2] == '/') { sb.Append("(?:.*/)?"); i += 2; }
                else { sb.Append(".*"); i++; }
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
