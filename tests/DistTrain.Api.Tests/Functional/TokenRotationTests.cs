using DistTrain.Api.Security;
using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using DistTrain.Cluster.Hosting;
using Grpc.Core;

namespace DistTrain.Api.Tests.Functional;

/// <summary>
/// Rotating the job API's bearer token without a restart: a real node on loopback reads its token from a Kubernetes-style
/// Secret mount, and the test swaps the mount's <c>..data</c> symlink as the kubelet does.
/// </summary>
public sealed class TokenRotationTests
{
    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task A_rotated_token_file_is_picked_up_and_the_previous_token_works_through_the_grace_period_only()
    {
        using var dir = new TempDir();
        var mount = new SecretMount(dir.Path, "token-one");
        await using var node = await ApiNode.StartAsync(configure: s => s with
        {
            ApiTokenFile = mount.TokenPath, ApiTokenGrace = TimeSpan.FromMinutes(10), ApiTokenPoll = TimeSpan.FromMilliseconds(100),
        });
        await node.WaitUntilServingAsync();
        Assert.True(await Works(node, "token-one"));
        Assert.False(await Works(node, "token-two"));

        mount.Rotate("token-two");
        await Eventually(() => Works(node, "token-two"));
        Assert.True(await Works(node, "token-one"));    // within its grace period

        // Only the one previous token is kept: a second rotation ends token-one's grace at once.
        mount.Rotate("token-three");
        await Eventually(() => Works(node, "token-three"));
        Assert.True(await Works(node, "token-two"));
        Assert.False(await Works(node, "token-one"));
    }

    [Fact]
    public async Task With_no_grace_the_previous_token_is_refused_as_soon_as_the_new_one_is_read()
    {
        using var dir = new TempDir();
        var mount = new SecretMount(dir.Path, "leaked-token");
        await using var node = await ApiNode.StartAsync(configure: s => s with
        {
            ApiTokenFile = mount.TokenPath, ApiTokenGrace = TimeSpan.Zero, ApiTokenPoll = TimeSpan.FromMilliseconds(100),
        });
        await node.WaitUntilServingAsync();
        Assert.True(await Works(node, "leaked-token"));
        mount.Rotate("fresh-token");
        await Eventually(() => Works(node, "fresh-token"));
        Assert.False(await Works(node, "leaked-token"));
    }

    [Fact]
    public void The_grace_period_ends_on_the_clock_and_a_vanished_or_empty_file_keeps_the_current_token()
    {
        using var dir = new TempDir();
        var mount = new SecretMount(dir.Path, "old");
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));
        var log = new List<string>();
        // The poll timer stays out of the way (an hour); the test calls Reload itself.
        using var tokens = ApiTokenSource.FromFile(mount.TokenPath, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1), clock, log.Add);
        mount.Rotate("new");
        tokens.Reload();
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.True(tokens.Accepts("old") && tokens.Accepts("new"));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.False(tokens.Accepts("old"));
        Assert.True(tokens.Accepts("new"));

        File.WriteAllText(mount.TokenPath, "  \n");
        tokens.Reload();
        File.Delete(mount.TokenPath);
        tokens.Reload();
        Assert.True(tokens.Accepts("new"));
        Assert.False(tokens.Accepts(""));
        Assert.Contains(log, l => l.Contains("keeping the current bearer token") && l.Contains("is empty"));
        Assert.Contains(log, l => l.Contains("keeping the current bearer token") && l.Contains("cannot read"));
        Assert.DoesNotContain(log, l => l.Contains("\"new\"") || l.Contains(": new") || l.Contains("old\n"));

        File.WriteAllText(Path.Combine(dir.Path, "empty"), "");
        var e = Assert.Throws<ArgumentException>(() => ApiTokenSource.FromFile(Path.Combine(dir.Path, "empty"), TimeSpan.Zero, TimeSpan.FromSeconds(1)));
        Assert.Contains("is empty", e.Message);
    }

    [Fact]
    public void A_token_and_a_token_file_together_are_refused_and_a_file_alone_serves_the_api()
    {
        // Only the token settings are under test here; remoting is plaintext so no certificates are needed.
        var settings = new NodeSettings([Roles.Coordinator], "127.0.0.1", 1, [], [], Path.GetTempPath()) { GrpcPort = 2, PlaintextRemoting = true, ClusterTls = null };
        var e = Assert.Throws<ArgumentException>(() => (settings with { ApiToken = "t", ApiTokenFile = "/run/token" }).Validate());
        Assert.Contains(EnvironmentVariables.ApiTokenFile, e.Message);
        Assert.Contains(EnvironmentVariables.ApiToken, e.Message);
        (settings with { ApiTokenFile = "/run/token" }).Validate();
        Assert.Throws<ArgumentException>(() => (settings with { ApiTokenFile = "/run/token", ApiTokenGrace = TimeSpan.FromSeconds(-1) }).Validate());
    }

    /// <summary>True if the token is let in, false if refused as Unauthenticated; anything else fails the test.</summary>
    private static async Task<bool> Works(ApiNode node, string token)
    {
        try
        {
            await node.Client(token).ListJobsAsync(new ListJobsRequest(), deadline: Deadline);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated) { return false; }
    }

    /// <summary>Polls until <paramref name="condition"/> holds; the node re-reads its file every 100 ms, 30 s is the bound.</summary>
    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "the rotated token was not picked up within 30 s");
            await Task.Delay(50);
        }
    }

    /// <summary>The layout the kubelet gives a Secret volume: <c>token → ..data/token</c>, <c>..data → ..TIMESTAMP</c>, swapped by rename.</summary>
    private sealed class SecretMount
    {
        private readonly string _root;
        private int _version;

        public SecretMount(string root, string token)
        {
            _root = root;
            Directory.CreateSymbolicLink(Path.Combine(root, "..data"), Write(token));
            File.CreateSymbolicLink(TokenPath, Path.Combine("..data", "token"));
        }

        public string TokenPath => Path.Combine(_root, "token");

        public void Rotate(string token)
        {
            string temp = Path.Combine(_root, "..data_tmp");
            Directory.CreateSymbolicLink(temp, Write(token));
            // rename(2) over the old link, atomic, as the kubelet does it (File.Move refuses a link to a directory).
            if (rename(temp, Path.Combine(_root, "..data")) != 0)
                throw new IOException($"rename failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        private static extern int rename(string from, string to);

        private string Write(string token)
        {
            string name = $"..2026_12_04_{++_version}";
            Directory.CreateDirectory(Path.Combine(_root, name));
            File.WriteAllText(Path.Combine(_root, name, "token"), token + "\n");
            return name;
        }
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;
        public override DateTimeOffset GetUtcNow() => _now;
        public void Advance(TimeSpan by) => _now += by;
    }
}
