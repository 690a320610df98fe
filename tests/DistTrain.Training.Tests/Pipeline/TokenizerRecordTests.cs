using DistTrain.Data.Tokenization;
using DistTrain.Execution;
using DistTrain.TestSupport;
using DistTrain.Training.Pipeline;

namespace DistTrain.Training.Tests.Pipeline;

/// <summary>
/// Every rank records the stage's tokenizer beside its checkpoints when the stage starts. A rank must never see the
/// directory missing or half written once its own call returned, however the ranks interleave (a stage once ended
/// without its descriptor when a losing rank deleted the winner's directory before moving its own in).
/// </summary>
public sealed class TokenizerRecordTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Ranks_recording_at_once_each_find_the_whole_tokenizer_when_their_call_returns()
    {
        const int ranks = 4, rounds = 12;
        var job = TinySpecs.Load(TinySpecs.Gpt);
        var stage = job.Stages[0];
        using var root = new TempDir();
        var data = StageInputs.Data(job, stage, new StageArtifacts(root.Path, "data", stage.Name));
        string identity = data.Tokenizer.Identity;
        for (int round = 0; round < rounds; round++)
        {
            var artifacts = new StageArtifacts(root.Path, $"run{round}", stage.Name);
            using var start = new Barrier(ranks);
            var calls = Enumerable.Range(0, ranks).Select(_ => Task.Factory.StartNew(() =>
            {
                Assert.True(start.SignalAndWait(Bound), "the ranks did not all start");
                StageInputs.Record(artifacts, data);
                // Read right after this rank's own call, while the others may still be in theirs.
                return Tokenizers.Load(artifacts.Tokenizer).Identity;
            }, TaskCreationOptions.LongRunning)).ToArray();
            var seen = await Task.WhenAll(calls).WaitAsync(Bound);
            Assert.All(seen, s => Assert.Equal(identity, s));
            Assert.DoesNotContain(Directory.GetDirectories(artifacts.Directory), d => Path.GetFileName(d).StartsWith("tokenizer.", StringComparison.Ordinal));   // no temporary copy left behind
        }
    }

    [Fact]
    public void A_different_tokenizer_left_by_an_earlier_run_is_replaced_whole()
    {
        var job = TinySpecs.Load(TinySpecs.Gpt);
        var stage = job.Stages[0];
        var other = job with { Stages = [stage with { Model = stage.Model with { VocabSize = 384 } }] };
        using var root = new TempDir();
        var artifacts = new StageArtifacts(root.Path, "run", stage.Name);
        var first = StageInputs.Data(other, other.Stages[0], artifacts);
        var second = StageInputs.Data(job, stage, artifacts);
        Assert.NotEqual(first.Tokenizer.Identity, second.Tokenizer.Identity);

        StageInputs.Record(artifacts, first);
        StageInputs.Record(artifacts, second);
        Assert.Equal(second.Tokenizer.Identity, Tokenizers.Load(artifacts.Tokenizer).Identity);
        Assert.DoesNotContain(Directory.GetDirectories(artifacts.Directory), d => Path.GetFileName(d).StartsWith("tokenizer.", StringComparison.Ordinal));
    }
}
