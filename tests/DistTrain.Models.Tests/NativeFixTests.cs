using System.Text;

namespace DistTrain.Models.Tests;

/// <summary>
/// Checks build/TorchSharpNative.targets: where the host libstdc++ lacks GLIBCXX_3.4.32, the copy of
/// libLibTorchSharp.so in the build output differs from the NuGet cache's copy in exactly the one version-needed
/// entry (a name character and its 4-byte hash), and the cache copy is left as shipped.
/// </summary>
public sealed class NativeFixTests
{
    private static readonly byte[] Wanted = Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0");

    [Fact]
    public void The_output_copy_differs_from_the_cache_only_in_the_version_entry()
    {
        if (!OperatingSystem.IsLinux()) return;   // the fix is Linux-only by design
        string output = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        string? host = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6" }
            .FirstOrDefault(File.Exists);
        Assert.NotNull(host);
        bool hostHasIt = File.ReadAllBytes(host!).AsSpan().IndexOf(Wanted) >= 0;

        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                           ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string cached = Path.Combine(nugetRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(cached), $"expected the restored package at {cached}");

        byte[] a = File.ReadAllBytes(cached), b = File.ReadAllBytes(output);
        Assert.Equal(a.Length, b.Length);
        int differing = 0;
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) differing++;

        if (hostHasIt)
            Assert.Equal(0, differing);   // a GCC 13+ host gets the library exactly as shipped
        else
            Assert.InRange(differing, 1, 5);   // '2'→'0' in the name, plus at most the 4 bytes of vna_hash
        Assert.True(a.AsSpan().IndexOf(Wanted) >= 0, "the NuGet cache copy must still ask for GLIBCXX_3.4.32");
    }
}
