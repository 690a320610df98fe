using Akka.Actor;
using DistTrain.Api.Hosting;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;
using Xunit.Abstractions;

namespace DistTrain.Cluster.Tests.Functional;

/// <summary>
/// Real clusters on loopback: the coordinator in the test process, workers as separate `disttrain node` processes,
/// gradients on the TCP data plane. Every process a test starts is killed when the test ends.
/// </summary>
[Collection("cluster")]   // one cluster at a time: the machine has two cores
public sealed class DataParallelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, "ring")]
    [InlineData(2, "ring")]
    [InlineData(3, "ring")]
    [InlineData(1, "coordinator")]
    [InlineData(2, "coordinator")]
    [InlineData(3, "coordinator")]
    public Task Data_parallel_training_equals_a_single_process_run(int workers, string aggregation) =>
        EqualsSingleProcess(ClusterHarness.Spec(workers, aggregation), workers, aggregation);

    /// <summary>
    /// Gradient buckets all-reduced while backward still runs (one per block of a 3-layer GPT: 0.01 MB is below a
    /// block's size), on the real data plane in both aggregation modes.
    /// </summary>
    [Theory]
    [InlineData(2, "ring")]
    [InlineData(3, "coordinator")]
    public Task Overlapping_the_all_reduce_with_backward_equals_a_single_process_run(int workers, string aggregation) =>
        EqualsSingleProcess(ClusterHarness.Spec(workers, aggregation, steps: 12, layers: 3, bucketMb: 0.01), workers, $"{aggregation}, overlapped");

    private async Task EqualsSingleProcess(string yaml, int workers, string aggregation)
    {
        using var reference = new TempDir();
        using var root = new TempDir();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ClusterHarness.RunInProcess(yaml, reference.Path);
        output.WriteLine($"reference run: {clock.Elapsed.TotalSeconds:F1} s");

        string jobId;
        await using (var cluster = await LocalCluster.StartAsync(new LocalClusterOptions(workers, root.Path, ClusterHarness.Disttrain())))
        {
            output.WriteLine($"cluster up: {clock.Elapsed.TotalSeconds:F1} s");
            // The default local cluster: remoting over mutual TLS (docs/security.md).
            Assert.Equal("akka.ssl.tcp", Akka.Cluster.Cluster.Get(cluster.System).SelfAddress.Protocol);
            var result = await new ClusterJobRunner(cluster.Jobs).RunAsync(yaml, quick: false);
            Assert.True(result.State == JobState.Succeeded, result.Stages.Single().Summary);
            jobId = result.JobId;
            output.WriteLine($"job done: {clock.Elapsed.TotalSeconds:F1} s");
        }
        output.WriteLine($"cluster down: {clock.Elapsed.TotalSeconds:F1} s");
        double diff = ClusterHarness.MaxAbsDiff(ClusterHarness.FinalParameters(yaml, reference.Path, "ref"), ClusterHarness.FinalParameters(yaml, root.Path, jobId));
        output.WriteLine($"{workers} worker(s), {aggregation}: max |Δparam| = {diff:E2}");
        Assert.True(diff <= 1e-5, $"max |Δ| = {diff}");
    }
}
