using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DistTrain.Collective;
using DistTrain.Collective.Wire;

namespace DistTrain.Bench;

/// <summary>
/// One rank of `disttrain bench allreduce`, run as a child process: forms the data-plane group, then for
/// every size times (a) the same traffic over plain sockets and (b) our all-reduce, and reports both.
/// </summary>
public static class AllReduceBenchChild
{
    /// <summary>Runs the child protocol on stdin/stdout; returns the exit code.</summary>
    public static async Task<int> RunAsync(TextReader input, TextWriter output)
    {
        using var listener = DataPlaneListener.Start(IPAddress.Loopback);
        var raw = new TcpListener(IPAddress.Loopback, 0);
        raw.Start();
        try
        {
            await output.WriteLineAsync(BenchWire.Write(new ChildPorts(listener.Port, ((IPEndPoint)raw.LocalEndpoint).Port)));
            await output.FlushAsync();
            var setupLine = await input.ReadLineAsync() ?? throw new EndOfStreamException("No setup from the parent.");
            var setup = BenchWire.Read<ChildSetup>(setupLine);
            // If the parent dies, stdin closes: exit instead of lingering as an orphan holding ports and memory.
            new Thread(() => { while (input.ReadLine() is not null) { } Environment.Exit(3); }) { IsBackground = true }.Start();

            var options = new DataPlaneOptions
            {
                Wire = setup.Wire, BucketBytes = setup.BucketBytes, SegmentBytes = setup.SegmentBytes, SocketBufferBytes = setup.SocketBufferBytes,
                Integrity = setup.Integrity, SharedMemory = setup.SharedMemory,
            };
            var peers = setup.DataPorts.Select(p => (EndPoint)new IPEndPoint(IPAddress.Loopback, p)).ToArray();
            var spec = new GroupSpec(setup.JobId, setup.Generation, setup.Rank, setup.World, peers, setup.Mode,
                new IPEndPoint(IPAddress.Loopback, setup.ReducerPort)) { Secret = new GroupSecret(setup.GroupSecret) };
            using var group = await ProcessGroup.ConnectAsync(spec, listener, options);
            int maxElements = setup.SizesMb.Max() << 18;
            var buffer = GC.AllocateUninitializedArray<float>(maxElements, pinned: true);
            using var baseline = RawTraffic.Connect(setup, raw, options.SegmentBytes, options.SocketBufferBytes, buffer);
            // Any finite values do: SIMD adds cost the same for all of them (sums may grow to Inf, which costs the same too).
            buffer.AsSpan().Fill(1e-3f * (setup.Rank + 1));
            var one = new float[1];

            for (int i = 0; i < setup.SizesMb.Length; i++)
            {
                int elements = setup.SizesMb[i] << 18, iterations = setup.Iterations[i];
                long rawBytes = setup.Mode == AllReduceAlgorithm.Ring
                    ? (long)(AllReduceBenchRow.BusFactor(setup.World) * elements) * setup.Wire.BytesPerElement() // each way
                    : (long)elements * setup.Wire.BytesPerElement();

                var slice = buffer.AsSpan(0, elements);
                baseline.Prepare(elements * sizeof(float));
                baseline.Exchange(rawBytes); // warm-up both
                group.AllReduce(slice);
                // Raw and ours alternate, each after a barrier, so a neighbour's compile job on this shared
                // machine slows both alike instead of skewing whichever happened to run at that moment.
                var rawSeconds = new double[iterations];
                var oursSeconds = new double[iterations];
                for (int k = 0; k < iterations; k++)
                {
                    group.AllReduce(one); // barrier
                    long t0 = Stopwatch.GetTimestamp();
                    baseline.Exchange(rawBytes);
                    rawSeconds[k] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    group.AllReduce(one);
                    t0 = Stopwatch.GetTimestamp();
                    group.AllReduce(slice);
                    oursSeconds[k] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }
                // In coordinator mode every byte of ours goes to or comes from the reducer.
                var stats = group.AllReduce(slice);
                long reducerBytes = setup.Mode == AllReduceAlgorithm.Coordinator ? stats.BytesSent + stats.BytesReceived : 0;
                await output.WriteLineAsync(BenchWire.Write(new ChildResult(setup.SizesMb[i], rawSeconds, oursSeconds, reducerBytes)));
                await output.FlushAsync();
            }
            return 0;
        }
        finally { raw.Stop(); }
    }
}

/// <summary>
/// The transport's limit: the same bytes between the same processes over plain blocking sockets,
/// preallocated buffers, no framing, no reduction. Ring: send to the right while receiving from the
/// left. Coordinator: send to the parent's hub while receiving from it. Like ours, it reads from the
/// rank's gradient buffer and writes into a buffer of the same size (wrapping around), so both pay the
/// same memory traffic; a small cache-resident buffer would flatter TCP.
/// </summary>
internal sealed class RawTraffic : IDisposable
{
    private readonly Socket _send, _receive;
    private readonly int _segmentBytes;
    private readonly float[] _source;
    private byte[] _target = [];
    private int _span;

    private RawTraffic(Socket send, Socket receive, int segmentBytes, float[] source)
    {
        _send = send;
        _receive = receive;
        _segmentBytes = segmentBytes;
        _source = source;
    }

    public static RawTraffic Connect(ChildSetup setup, TcpListener listener, int segmentBytes, int socketBufferBytes, float[] source)
    {
        Socket send, receive;
        if (setup.Mode == AllReduceAlgorithm.Coordinator)
        {
            send = receive = Dial(setup.RawHubPort);
            send.Send(BitConverter.GetBytes(setup.Rank));
        }
        else
        {
            // A connect completes in the listen backlog, so dialling before accepting cannot deadlock.
            send = Dial(setup.RawPorts[(setup.Rank + 1) % setup.World]);
            receive = listener.AcceptSocket();
        }
        // Same socket buffer sizes as the data plane, so the comparison is like for like.
        if (socketBufferBytes > 0)
            foreach (var s in new[] { send, receive }) s.SendBufferSize = s.ReceiveBufferSize = socketBufferBytes;
        return new RawTraffic(send, receive, segmentBytes, source);
    }

    private static Socket Dial(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(IPAddress.Loopback, port);
        return s;
    }

    /// <summary>Uses the first <paramref name="bytes"/> of the gradient buffer as source and as many bytes as target.</summary>
    public void Prepare(int bytes)
    {
        if (_target.Length < bytes) _target = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
        _span = bytes;
    }

    /// <summary>Sends and receives <paramref name="bytes"/> at once, in segment-sized calls.</summary>
    public void Exchange(long bytes)
    {
        var sender = Task.Factory.StartNew(() => Pump(_send, bytes, send: true), TaskCreationOptions.LongRunning);
        Pump(_receive, bytes, send: false);
        sender.GetAwaiter().GetResult();
    }

    private void Pump(Socket socket, long bytes, bool send)
    {
        var memory = send ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(_source.AsSpan(0, _span / sizeof(float))) : _target.AsSpan(0, _span);
        long offset = 0;
        while (bytes > 0)
        {
            int at = (int)(offset % _span);
            int n = (int)Math.Min(Math.Min(_segmentBytes, bytes), _span - at);
            int done = send ? socket.Send(memory.Slice(at, n)) : socket.Receive(memory.Slice(at, n));
            if (done <= 0) throw new EndOfStreamException("Baseline peer closed.");
            bytes -= done;
            offset += done;
        }
    }

    public void Dispose()
    {
        _send.Dispose();
        _receive.Dispose();
    }
}
