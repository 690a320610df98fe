using DistTrain.Contracts;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using DistTrain.Cluster.Coordination;
using DistTrain.Cluster.Jobs;
using DistTrain.Contracts.Protocols;
using DistTrain.Contracts.Specs;
using DistTrain.Data;

namespace DistTrain.Cluster.Tests.Hosting;

/// <summary>
/// A spec the API accepts must be able to run: its text travels inside actor messages, and a message over Akka's
/// frame size is dropped by remoting (the stage then stalls until its prepare timeout). The frame size in
/// cluster-config/akka.hocon is derived from <see cref="SpecLimits.MaxSpecBytes"/>; these tests hold the two together.
/// </summary>
public sealed class FrameLimitTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string FrameSizePath = "akka.remote.dot-netty.tcp.maximum-frame-size";

    private static string Hocon => File.ReadAllText(ShippedFiles.Find("cluster-config/akka.hocon"));

    /// <summary>Loopback remoting on a free port, otherwise exactly the nodes' configuration.</summary>
    private static ActorSystem System(string name) => ActorSystem.Create(name, ConfigurationFactory.ParseString(
        "akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }\nakka.loglevel = WARNING\n" + Hocon));

    /// <summary>The largest spec accepted, padded with a YAML comment of the character JSON escapes to two bytes.</summary>
    private static string LargestSpec()
    {
        string head = "name: frame\nseed: 1\nstages:\n  - {name: lm, kind: pretrain, objective: clm}\n# ";
        string spec = head + new string('"', SpecLimits.MaxSpecBytes - Encoding.UTF8.GetByteCount(head) - 1) + "\n";
        Assert.Equal(SpecLimits.MaxSpecBytes, Encoding.UTF8.GetByteCount(spec));
        Assert.Null(SpecInput.Admit(spec));
        return spec;
    }

    /// <summary>Every message that carries a spec, at its largest: long ids, the most workers, the largest spec.</summary>
    private static IReadOnlyList<object> LargestMessages(string spec)
    {
        string job = new('j', 200), stage = new('s', SpecLimits.MaxNameLength);
        var peers = Enumerable.Range(0, SpecLimits.MaxWorkers)
            .Select(i => new DataPlaneEndpoint($"worker-{i}.disttrain-workers.a-long-namespace-name.svc.cluster.local", 65535)).ToList();
        return
        [
            new SubmitJob(spec, true),
            new RunStage(job, stage, spec, true, new RunLimits(int.MaxValue, SpecLimits.MaxWorkers, SpecLimits.MaxWorkers, int.MaxValue, int.MaxValue, int.MaxValue),
                GradientAggregation.Ring, GradientWire.Bf16, SpecLimits.MaxPriority, new RunResume(new string('c', 4096), int.MaxValue), int.MaxValue),
            new RunInference(job, stage, spec, true, int.MaxValue, SpecLimits.MaxWorkers, SpecLimits.MaxPriority),
            new PrepareGroup(job, stage, int.MaxValue, SpecLimits.MaxWorkers - 1, SpecLimits.MaxWorkers, peers, spec, true, new string('c', 4096),
                GradientAggregation.Coordinator, GradientWire.Bf16, peers[0], new byte[32]),
            new RunShard(job, stage, spec, true, int.MaxValue, int.MaxValue),
        ];
    }

    [Fact]
    public void The_frame_size_in_akka_hocon_is_the_one_derived_from_the_spec_limit()
    {
        long frame = ConfigurationFactory.ParseString(Hocon).GetByteSize(FrameSizePath) ?? 0;
        Assert.Equal(SpecLimits.MaxWireExpansion * SpecLimits.MaxSpecBytes + SpecLimits.MessageEnvelopeBytes, SpecLimits.MaxFrameBytes);
        Assert.Equal(SpecLimits.MaxFrameBytes, frame);
    }

    [Fact]
    public async Task Every_message_carrying_the_largest_spec_serializes_within_the_frame_size()
    {
        var system = System("frame-serialize");
        try
        {
            long frame = system.Settings.Config.GetByteSize(FrameSizePath) ?? 0;
            // The remote envelope (recipient and sender paths, manifest) is well under 4 KiB beside the payload.
            foreach (var message in LargestMessages(LargestSpec()))
            {
                int size = system.Serialization.FindSerializerFor(message).ToBinary(message).Length;
                output.WriteLine($"{message.GetType().Name}: {size} bytes serialized; frame {frame}");
                Assert.True(size + 4096 <= frame, $"{message.GetType().Name}: {size} bytes serialized, frame {frame}");
            }
        }
        finally { await system.Terminate(); }
    }

    [Fact]
    public async Task No_character_a_spec_may_hold_serializes_to_more_than_the_stated_expansion()
    {
        var system = System("frame-expansion");
        try
        {
            int Size(string spec)
            {
                var m = new SubmitJob(spec, false);
                return system.Serialization.FindSerializerFor(m).ToBinary(m).Length;
            }
            int empty = Size("");
            double worst = 0;
            string worstChar = "";
            var candidates = Enumerable.Range(0, 0x10000).Where(c => c is < 0xD800 or > 0xDFFF).Select(c => ((char)c).ToString()).Append("😀");
            foreach (var c in candidates.Where(c => SpecInput.FindProblem(c) is null))
            {
                string text = string.Concat(Enumerable.Repeat(c, 16));
                double ratio = (double)(Size(text) - empty) / Encoding.UTF8.GetByteCount(text);
                if (ratio > worst) (worst, worstChar) = (ratio, c);
            }
            Assert.True(worst <= SpecLimits.MaxWireExpansion, $"U+{(int)worstChar[0]:X4} takes {worst} bytes per UTF-8 byte");
            Assert.Equal(2.0, worst);   // a quote or a backslash: the bound is tight
        }
        finally { await system.Terminate(); }
    }

    /// <summary>An actor that answers with the length of the spec it received.</summary>
    private sealed class SpecLength : ReceiveActor
    {
        public SpecLength() => Receive<PrepareGroup>(m => Sender.Tell(m.SpecYaml.Length));
    }

    [Fact]
    public async Task A_PrepareGroup_with_the_largest_spec_crosses_real_remoting()
    {
        var coordinator = System("frame");
        var worker = System("frame");
        try
        {
            worker.ActorOf(Props.Create(() => new SpecLength()), "spec-length");
            var address = ((ExtendedActorSystem)worker).Provider.DefaultAddress;
            string spec = LargestSpec();
            var prepare = (PrepareGroup)LargestMessages(spec)[3];
            var target = coordinator.ActorSelection(new RootActorPath(address) / "user" / "spec-length");
            int received = await target.Ask<int>(prepare, TimeSpan.FromSeconds(30));
            Assert.Equal(spec.Length, received);
        }
        finally
        {
            await coordinator.Terminate();
            await worker.Terminate();
        }
    }
}
