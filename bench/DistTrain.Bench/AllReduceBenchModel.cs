using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Bench;

/// <summary>What `disttrain bench allreduce` measures: sizes × process counts × algorithms × frame integrity modes, on loopback.</summary>
public sealed record AllReduceBenchOptions
{
    public IReadOnlyList<int> SizesMb { get; init; } = [1, 4, 16, 64, 256];
    public IReadOnlyList<int> Procs { get; init; } = [2, 3, 4];
    public IReadOnlyList<AllReduceAlgorithm> Modes { get; init; } = [AllReduceAlgorithm.Ring, AllReduceAlgorithm.Coordinator];
    public WireFormat Wire { get; init; } = WireFormat.Float32;
    /// <summary>Frame integrity modes to measure, each with its own group of processes, side by side in one run.</summary>
    public IReadOnlyList<FrameIntegrity> Integrity { get; init; } = [new DataPlaneOptions().Integrity];
    /// <summary>Transports to compare side by side: "shm" (shared memory between the ranks, the data plane's default on one host) and "tcp" (loopback).</summary>
    public IReadOnlyList<string> Transports { get; init; } = ["shm"];
    /// <summary>Data-plane tuning the children use (buckets, segments, socket buffers); defaults are the library's.</summary>
    public DataPlaneOptions DataPlane { get; init; } = new();
    /// <summary>Bytes every timed block moves per rank, roughly; sets the iteration count per size.</summary>
    public long BytesPerMeasurement { get; init; } = 512L << 20;
    /// <summary>Longest one (mode, procs) group may take before its children are killed.</summary>
    public TimeSpan GroupTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Timed iterations for one size: enough to smooth noise, few enough to keep the default run to minutes.</summary>
    public int Iterations(int sizeMb) => (int)Math.Clamp(BytesPerMeasurement / ((long)sizeMb << 20), 5, 50);
}

/// <summary>One row of the result table. Bandwidths in GB/s (10^9 bytes per second).</summary>
public sealed record AllReduceBenchRow(
    string Mode, int Procs, int SizeMb, int Iterations, string Wire, string Integrity, string Transport,
    double AlgBwGbps, double BusBwGbps, double TcpBusBwGbps, double BusBwRatioVsTcp, long CoordinatorBytesPerStep)
{
    /// <summary>busBW = algBW·2(N−1)/N: the per-rank link traffic of an optimal all-reduce, comparable across N.</summary>
    public static double BusFactor(int n) => 2.0 * (n - 1) / n;
}

/// <summary>How to start one more copy of this program as a bench child (the hidden child subcommand).</summary>
public delegate ProcessStartInfo ChildLauncher();

/// <summary>Line-delimited JSON between the bench parent and its children (stdin/stdout).</summary>
internal static class BenchWire
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string Write<T>(T value) => JsonSerializer.Serialize(value, Json);
    public static T Read<T>(string line) => JsonSerializer.Deserialize<T>(line, Json) ?? throw new InvalidDataException($"Bad bench line: {line}");
}

/// <summary>Child → parent: where the child listens (data plane and the raw-socket baseline).</summary>
internal sealed record ChildPorts(int DataPort, int RawPort);

/// <summary>Parent → child: everything the child needs to form its group and run the sizes (the group secret travels on the child's stdin pipe).</summary>
internal sealed record ChildSetup(
    string JobId, long Generation, int Rank, int World, AllReduceAlgorithm Mode, WireFormat Wire,
    int[] DataPorts, int[] RawPorts, int ReducerPort, int RawHubPort, int[] SizesMb, int[] Iterations,
    int BucketBytes, int SegmentBytes, int SocketBufferBytes, FrameIntegrity Integrity, byte[] GroupSecret, bool SharedMemory);

/// <summary>Child → parent: timings of one size, seconds of each iteration (raw and ours interleaved in time).</summary>
/// <param name="ReducerBytes">This rank's bytes to and from the reducer in one call (0 in ring mode).</param>
internal sealed record ChildResult(int SizeMb, double[] RawSeconds, double[] OursSeconds, long ReducerBytes);
