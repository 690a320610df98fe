using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using DistTrain.Data.Fetching;

namespace DistTrain.Data.Tests.Fetching;

public sealed class NpmPackageTests
{
    [Fact]
    public void Extract_strips_package_prefix_and_integrity_is_checked()
    {
        var dir = Directory.CreateTempSubdirectory("npmpkg-").FullName;
        var tgz = Path.Combine(dir, "p.tgz");
        using (var gzip = new GZipStream(File.Create(tgz), CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, "package/data/a.txt")
            {
                DataStream = new MemoryStream("hello"u8.ToArray()),
            };
            tar.WriteEntry(entry);
        }
        var integrity = "sha512-" + Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(tgz)));
        NpmPackage.VerifyIntegrity(new NpmPackageSpec("p", "1.0.0", integrity), tgz);
        var wrong = new NpmPackageSpec("p", "1.0.0", "sha512-AAAA");
        var e = Assert.Throws<PackageFetchException>(() => NpmPackage.VerifyIntegrity(wrong, tgz));
        Assert.Contains("expected sha512-AAAA", e.Message);

        NpmPackage.Extract(tgz, Path.Combine(dir, "out"));
        Assert.Equal("hello", File.ReadAllText(Path.Combine(dir, "out", "data", "a.txt")));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void Entries_that_escape_the_folder_are_refused()
    {
        var dir = Directory.CreateTempSubdirectory("npmpkg-").FullName;
        var tgz = Path.Combine(dir, "evil.tgz");
        using (var gzip = new GZipStream(File.Create(tgz), CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/../../x.txt") { DataStream = new MemoryStream([1]) });
        Assert.Throws<PackageFetchException>(() => NpmPackage.Extract(tgz, Path.Combine(dir, "out")));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void A_missing_npm_gives_a_clear_message()
    {
        // Run with a PATH that holds no npm; the child process inherits this process's environment.
        var path = Environment.GetEnvironmentVariable("PATH");
        var dir = Directory.CreateTempSubdirectory("npm-missing-").FullName;
        try
        {
            Environment.SetEnvironmentVariable("PATH", dir);
            var e = Assert.Throws<PackageFetchException>(() =>
                NpmPackage.Fetch(new NpmPackageSpec("left-pad", "1.3.0", "sha512-x"), Path.Combine(dir, "pkg")));
            Assert.Contains("npm was not found on PATH", e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
            Directory.Delete(dir, recursive: true);
        }
    }
}
