using DistTrain.Data.Files;

namespace DistTrain.Data.Tests.Files;

public sealed class DataFileResolverTests
{
    [Fact]
    public void Files_named_train_validation_test_are_presplit()
    {
        using var tmp = new TempFolder();
        tmp.Write("d/train.jsonl", "{}");
        tmp.Write("d/dev.jsonl", "{}");
        tmp.Write("d/test.jsonl.gz", "");
        tmp.Write("d/README.md", "skipped in a folder");
        tmp.Write("d/dataset_infos.json", "{}");
        var set = DataFileResolver.Resolve(tmp.Path, "d");
        Assert.True(set.Presplit);
        Assert.Equal([tmp.File("d/train.jsonl")], set.Train);
        Assert.Equal([tmp.File("d/dev.jsonl")], set.Validation);
        Assert.Equal([tmp.File("d/test.jsonl.gz")], set.Test);
        Assert.Equal(tmp.Path, set.Root);
    }

    [Fact]
    public void Hf_shard_names_and_split_folders_are_presplit()
    {
        using var tmp = new TempFolder();
        tmp.Write("hf/data/train-00001-of-00002.parquet", "");
        tmp.Write("hf/data/train-00000-of-00002-8a3f.parquet", "");
        tmp.Write("hf/data/validation-00000-of-00001.parquet", "");
        tmp.Write("folders/train/part-0.txt", "x");
        tmp.Write("folders/valid/part-0.txt", "x");
        tmp.Write("folders/test/a/part-0.txt", "x");
        var hf = DataFileResolver.Resolve(tmp.Path, "hf");
        Assert.Equal([tmp.File("hf/data/train-00000-of-00002-8a3f.parquet"), tmp.File("hf/data/train-00001-of-00002.parquet")], hf.Train);
        Assert.Single(hf.Validation);
        Assert.Empty(hf.Test);
        var folders = DataFileResolver.Resolve(tmp.Path, "folders");
        Assert.True(folders.Presplit);
        Assert.Equal([tmp.File("folders/train/part-0.txt")], folders.Train);
        Assert.Equal([tmp.File("folders/valid/part-0.txt")], folders.Validation);
        Assert.Equal([tmp.File("folders/test/a/part-0.txt")], folders.Test);
    }

    [Fact]
    public void Other_names_are_unsplit_training_data_in_ordinal_order()
    {
        using var tmp = new TempFolder();
        tmp.Write("c/b.txt", "x");
        tmp.Write("c/a.jsonl", "{}");
        tmp.Write("c/sub/c.parquet", "");
        var set = DataFileResolver.Resolve(tmp.Path, "c");
        Assert.False(set.Presplit);
        Assert.Equal([tmp.File("c/a.jsonl"), tmp.File("c/b.txt"), tmp.File("c/sub/c.parquet")], set.Train);
        Assert.Empty(set.Validation);
        var single = DataFileResolver.Resolve(tmp.Path, "c/b.txt");
        Assert.Equal([tmp.File("c/b.txt")], single.Train);
        Assert.False(single.Presplit);
    }

    [Fact]
    public void Hidden_files_and_folders_such_as_a_cache_under_the_root_are_never_read()
    {
        using var tmp = new TempFolder();
        tmp.Write("a.jsonl", "{}");
        tmp.Write(".disttrain-cache/abc/train.jsonl", "{}");
        tmp.Write(".hidden.jsonl", "{}");
        Assert.Equal([tmp.File("a.jsonl")], DataFileResolver.Resolve(tmp.Path, ".").Train);
        Assert.Equal([tmp.File("a.jsonl")], DataFileResolver.Resolve(tmp.Path, "**/*.jsonl").Train);
    }

    [Fact]
    public void Globs_match_relative_to_the_root()
    {
        using var tmp = new TempFolder();
        tmp.Write("g/x/one.jsonl", "{}");
        tmp.Write("g/x/y/two.jsonl", "{}");
        tmp.Write("g/three.jsonl", "{}");
        tmp.Write("g/x/other.txt", "x");
        Assert.Equal(3, DataFileResolver.Resolve(tmp.Path, "g/**/*.jsonl").Train.Count);
        Assert.Equal([tmp.File("g/x/one.jsonl")], DataFileResolver.Resolve(tmp.Path, "g/x/*.jsonl").Train);
        Assert.Equal([tmp.File("g/x/one.jsonl")], DataFileResolver.Resolve(tmp.Path, "g/?/o*.jsonl").Train);
    }

    [Fact]
    public void Nothing_to_read_is_an_error_naming_the_path()
    {
        using var tmp = new TempFolder();
        Directory.CreateDirectory(Path.Combine(tmp.Path, "empty"));
        tmp.Write("docs/README.md", "x");
        Assert.Equal($"missing/train.jsonl: no such file or folder under {tmp.Path}",
            Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "missing/train.jsonl")).Message);
        Assert.Equal($"*.parquet: the pattern matches no file under {tmp.Path}",
            Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "*.parquet")).Message);
        Assert.Equal("empty: the folder holds no data files (.txt, .jsonl, .jsonl.gz, .json, .parquet); found: nothing",
            Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "empty")).Message);
        Assert.Equal("docs: the folder holds no data files (.txt, .jsonl, .jsonl.gz, .json, .parquet); found: README.md",
            Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "docs")).Message);
    }

    [Fact]
    public void Unsupported_extensions_and_half_named_splits_are_errors()
    {
        using var tmp = new TempFolder();
        tmp.Write("data.csv", "a,b");
        tmp.Write("m/train.jsonl", "{}");
        tmp.Write("m/extra.jsonl", "{}");
        Assert.Equal("data.csv: unsupported file type '.csv'; supported: .txt, .jsonl, .jsonl.gz, .json, .parquet",
            Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "data.csv")).Message);
        var e = Assert.Throws<DataFormatException>(() => DataFileResolver.Resolve(tmp.Path, "m"));
        Assert.StartsWith("m: some files are named by split (train/validation/test) and some are not: m/extra.jsonl", e.Message);
    }
}
