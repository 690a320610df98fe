namespace DistTrain.Contracts.Specs;

/// <summary>Keeps <c>data.path</c> inside the data root, lexically for every spec and on disk when a root is given.</summary>
public static class DataPaths
{
    /// <summary>Why <paramref name="relative"/> is not a safe path under a data root, or null if it is.</summary>
    /// <remarks>
    /// Purely lexical, so it gives the same answer in-process and on the cluster: forward slashes only, no
    /// absolute or drive-rooted paths, no <c>.</c>/<c>..</c>/empty segments, no control characters.
    /// </remarks>
    public static string? LexicalProblem(string relative)
    {
        if (relative.Length == 0) return "must not be empty";
        if (relative.Length > 1024) return "must be at most 1024 characters";
        if (relative.Any(char.IsControl)) return "must not contain control characters";
        if (relative.Contains('\\')) return "must use '/' as the separator";
        if (relative.StartsWith('/') || System.IO.Path.IsPathRooted(relative) || (relative.Length >= 2 && relative[1] == ':'))
            return "must be relative to the data root, not absolute";
        // A trailing '/' names a folder, as users write it ("corpus/"); every other segment must be a name.
        foreach (var segment in relative.TrimEnd('/').Split('/'))
        {
            if (segment == "..") return "must not contain '..' (it would escape the data root)";
            if (segment is "" or ".") return "must not contain empty or '.' segments";
            if (segment.StartsWith('~')) return "must not start a segment with '~'";
        }
        return null;
    }

    /// <summary>Resolves <paramref name="relative"/> under <paramref name="root"/>, following symlinks, and checks the result stays inside.</summary>
    /// <remarks>
    /// A link inside the root that points outside it is as much an escape as <c>..</c>, so each existing component
    /// is resolved to its final target and compared with the root's own resolved path. Missing components are
    /// allowed (a stage may create the file later); they cannot be links yet.
    /// </remarks>
    /// <returns>The absolute path, or null with <paramref name="problem"/> set.</returns>
    public static string? Resolve(string root, string relative, out string? problem)
    {
        problem = LexicalProblem(relative);
        if (problem is not null) return null;
        try
        {
            string realRoot = RealPath(System.IO.Path.GetFullPath(root));
            string current = realRoot;
            foreach (var segment in relative.TrimEnd('/').Split('/'))
            {
                current = RealPath(System.IO.Path.Combine(current, segment));
                if (!IsUnder(realRoot, current))
                {
                    problem = "resolves outside the data root (through a symbolic link)";
                    return null;
                }
            }
            return current;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problem = $"cannot be resolved under the data root ({e.GetType().Name})";
            return null;
        }
    }

    /// <summary>True when <paramref name="relative"/> is a glob (<c>*</c>, <c>?</c> or <c>[</c> in a segment).</summary>
    public static bool IsGlob(string relative) => relative.IndexOfAny(['*', '?', '[']) >= 0;

    /// <summary>Why <paramref name="relative"/> names nothing under <paramref name="root"/>, or null when a file or folder is there.</summary>
    /// <remarks>For a glob, the folder before its first wildcard must exist; which files match is the data layer's to say.</remarks>
    public static string? Missing(string root, string relative)
    {
        if (IsGlob(relative))
        {
            var fixedPart = string.Join('/', relative.Split('/').TakeWhile(seg => !IsGlob(seg)));
            var folder = fixedPart.Length == 0 ? root : System.IO.Path.Combine(root, fixedPart);
            return Directory.Exists(folder) ? null : $"'{relative}': the folder '{(fixedPart.Length == 0 ? "." : fixedPart)}' does not exist under the data root";
        }
        var full = System.IO.Path.Combine(root, relative.TrimEnd('/'));
        return File.Exists(full) || Directory.Exists(full) ? null : $"'{relative}' does not exist under the data root";
    }

    private static string RealPath(string path)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        if (!info.Exists || info.LinkTarget is null) return path;
        var target = info.ResolveLinkTarget(returnFinalTarget: true);
        return target is null ? path : System.IO.Path.GetFullPath(target.FullName);
    }

    private static bool IsUnder(string root, string path)
    {
        var trimmed = root.TrimEnd(System.IO.Path.DirectorySeparatorChar);
        return path == trimmed || path.StartsWith(trimmed + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }
}
