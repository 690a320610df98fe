using DistTrain.Cli.Commands;
using k8s.Models;
using DistTrain.Deploy.Tests.Manifests;

namespace DistTrain.Deploy.Tests.Images;

/// <summary>
/// The images (not built here: there is no Docker engine on the project's machines) are multi-stage, run
/// `disttrain node` as the non-root uid the manifests expect, and pick the right torch backend and base.
/// </summary>
public sealed class DockerfileTests
{
    public static TheoryData<string, string> Images => new()
    {
        { "docker/cpu.Dockerfile", "cpu" },
        { "docker/cuda.Dockerfile", "cuda" },
    };

    [Theory, MemberData(nameof(Images))]
    public void Is_multi_stage_publishing_with_the_sdk_and_running_on_a_runtime(string file, string backend)
    {
        var d = Dockerfile.Load(Repository.PathOf(file));
        Assert.True(d.Stages.Count >= 2, $"{file} has a single stage");
        var build = d.Stages.Single(s => s.Name == "build");
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", build.Base);
        string publish = build.All("RUN").Single(r => r.Contains("dotnet publish"));
        Assert.Contains("src/DistTrain.Cli", publish);
        // `disttrain bench` starts disttrain-bench from beside itself: both are published into the same folder, same backend.
        Assert.Contains("bench/DistTrain.Bench", publish);
        Assert.Equal(2, publish.Split($"-p:TorchBackend={backend} -o /out").Length - 1);
        // The runtime carries no SDK, and takes only the published output from the build stage.
        Assert.DoesNotContain("sdk", d.Final.Base);
        Assert.Contains(d.Final.All("COPY"), c => c.StartsWith("--from=build ", StringComparison.Ordinal));
        if (backend == "cuda")
        {
            Assert.StartsWith("nvidia/cuda:12.", d.Final.Base);
            Assert.Contains("runtime", d.Final.Base);
        }
        else Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:10.0", d.Final.Base);
    }

    [Theory, MemberData(nameof(Images))]
    public void Runs_as_the_non_root_uid_the_manifests_expect(string file, string backend)
    {
        var d = Dockerfile.Load(Repository.PathOf(file));
        string user = d.Final.Last("USER") ?? throw new Xunit.Sdk.XunitException($"{file}: the runtime stage sets no USER (it would run as root)");
        var ids = user.Split(':');
        Assert.All(ids, id => Assert.True(long.TryParse(id, out long n) && n > 0, $"{file}: USER {user} is not a numeric non-root uid[:gid]"));
        // The node pods' securityContext names the same uid (k8s/base): files the node writes stay its own.
        var overlay = backend == "cuda" ? Rendered.Gpu : Rendered.Cpu;
        foreach (var set in new[] { "disttrain-coordinator", "disttrain-worker" })
            Assert.Equal(long.Parse(ids[0]), Rendered.Of(overlay).One<V1StatefulSet>(set).Spec.Template.Spec.SecurityContext.RunAsUser);
    }

    [Theory, MemberData(nameof(Images))]
    public void The_entrypoint_is_disttrain_node(string file, string backend)
    {
        _ = backend;
        var d = Dockerfile.Load(Repository.PathOf(file));
        var entrypoint = Dockerfile.ExecForm(d.Final.Last("ENTRYPOINT") ?? throw new Xunit.Sdk.XunitException($"{file}: no ENTRYPOINT"));
        Assert.Equal(["/app/disttrain", NodeCommand.Create().Name], entrypoint);
        // /app is where the published output lands, and where the manifests mount cluster-config/ beside the executable.
        Assert.Equal("/app", d.Final.Last("WORKDIR"));
        Assert.Contains(d.Final.All("COPY"), c => c.EndsWith(" /app", StringComparison.Ordinal));
    }

    [Fact]
    public void The_build_context_leaves_out_build_outputs_and_git()
    {
        var ignored = File.ReadAllLines(Repository.PathOf(".dockerignore")).Select(l => l.Trim()).ToHashSet();
        Assert.Contains(".git", ignored);
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
    }

    [Fact]
    public void The_parser_joins_continuations_and_reads_stages()
    {
        var d = Dockerfile.Parse("# c\nFROM a:1 AS build\nRUN x \\\n    y\nFROM b\nCOPY --from=build /o /app\nUSER 1:2\nENTRYPOINT [\"/app/x\", \"node\"]\n");
        Assert.Equal(["a:1", "b"], d.Stages.Select(s => s.Base));
        Assert.Equal("build", d.Stages[0].Name);
        Assert.Equal("x      y", d.Stages[0].Last("RUN"));
        Assert.Equal(["/app/x", "node"], Dockerfile.ExecForm(d.Final.Last("ENTRYPOINT")!));
    }
}
