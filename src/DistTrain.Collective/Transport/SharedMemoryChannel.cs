using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace DistTrain.Collective;

/// <summary>
/// The data channel of a link whose two members share a <c>/dev/shm</c> (two processes on one host, or one pod): a
/// file mapped by both, holding one single-producer single-consumer byte ring per direction. A frame costs one copy
/// in and one copy out of the ring, with no system call unless a side has to wait, where loopback TCP costs two copies
/// plus the kernel's protocol work and a system call per segment, all on the cores that also train.
/// </summary>
/// <remarks>
/// <para><b>Who may map it.</b> The creator makes the file with mode 0600 and a random name, writes a random 32-byte
/// token into it, and sends name and token to the peer over the link's authenticated TCP data connection (the
/// handshake has proved the group secret; frames there are sealed). The peer maps the file and must find the token,
/// and the creator unlinks the file as soon as the peer answered (or failed): afterwards it exists only as the two
/// mappings, so nothing else can open it and nothing is left behind by a crash. Frames through the ring are not
/// tagged: they never leave the host's memory, and a process able to write the mapping (same user) can as well write
/// the training process's own memory.</para>
/// <para><b>Waiting.</b> A side that finds the ring empty (reader) or full (writer) sleeps on a futex in the shared
/// header in slices of at most 100 ms, rechecking the ring, the abort flag and its deadline (the data plane's
/// IoTimeout) between slices: never an unbounded wait and never a spin. <see cref="Abort"/> sets the shared closed
/// flag and wakes every waiter on both sides, as killing a socket does; a peer that dies without aborting is found by
/// the link's control connection, whose loss aborts the group.</para>
/// </remarks>
internal sealed unsafe class SharedMemoryChannel : IDisposable
{
    /// <summary>Bytes of each direction's ring (a power of two): eight of the ring all-reduce's 512 KiB segments.</summary>
    public const int RingBytes = 4 << 20;
    public const int TokenBytes = 32, IdBytes = 16;
    private const int Page = 4096;
    private const ulong Magic = 0x31304D4853544454;   // "TDTSHM01"
    private const long SegmentBytes = Page + 2L * (Page + RingBytes);
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(100);

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Ring _out, _in;
    private readonly TimeSpan _timeout;
    private readonly string? _path;   // the creator's file until it is unlinked
    private readonly object _gate = new();
    private int _users;
    private bool _aborted, _disposed;

    private SharedMemoryChannel(MemoryMappedFile file, bool creator, TimeSpan timeout, string? path)
    {
        _file = file;
        _view = file.CreateViewAccessor(0, SegmentBytes, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        var first = new Ring(_base + Page);
        var second = new Ring(_base + Page + Page + RingBytes);
        (_out, _in) = creator ? (first, second) : (second, first);
        _timeout = timeout;
        _path = path;
    }

    /// <summary>Whether this process can use shared-memory channels at all (Linux with a futex we know how to call).</summary>
    public static bool Supported => Futex.Available;

    /// <summary>The shared closed flag, written by either side's <see cref="Abort"/>.</summary>
    private int* Closed => (int*)(_base + 64);

    /// <summary>Creates a fresh segment in <paramref name="directory"/>; the file stays until <see cref="Unlink"/>.</summary>
    public static SharedMemoryChannel Create(string directory, TimeSpan timeout, out byte[] id, out byte[] token)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("shared-memory data channels need a tmpfs and futexes (Linux)");
        id = RandomNumberGenerator.GetBytes(IdBytes);
        token = RandomNumberGenerator.GetBytes(TokenBytes);
        var path = PathOf(directory, id);
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite,
            // Reserved up front: a tmpfs that runs out of room fails here, not with SIGBUS in the middle of a step.
            PreallocationSize = SegmentBytes,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        try
        {
            stream.SetLength(SegmentBytes);
            var file = MemoryMappedFile.CreateFromFile(stream, null, SegmentBytes, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            var channel = new SharedMemoryChannel(file, creator: true, timeout, path);
            BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(channel._base, 8), Magic);
            token.CopyTo(new Span<byte>(channel._base + 8, TokenBytes));
            return channel;
        }
        catch (Exception)
        {
            stream.Dispose();
            TryDelete(path);
            throw;
        }
    }

    /// <summary>Maps the peer's segment; null when it is not there (another host or pod) or does not carry the token.</summary>
    public static SharedMemoryChannel? Open(string directory, byte[] id, byte[] token, TimeSpan timeout)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(PathOf(directory, id), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        try
        {
            if (stream.Length != SegmentBytes) { stream.Dispose(); return null; }
            var file = MemoryMappedFile.CreateFromFile(stream, null, SegmentBytes, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            var channel = new SharedMemoryChannel(file, creator: false, timeout, null);
            bool mine = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(channel._base, 8)) == Magic
                && CryptographicOperations.FixedTimeEquals(new ReadOnlySpan<byte>(channel._base + 8, TokenBytes), token);
            if (mine) return channel;
            channel.Dispose();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            return null;
        }
    }

    private static string PathOf(string directory, byte[] id) => Path.Combine(directory, "disttrain-dp-" + Convert.ToHexString(id).ToLowerInvariant());

    /// <summary>Removes the creator's file (the mappings stay valid); idempotent.</summary>
    public void Unlink()
    {
        if (_path is not null) TryDelete(_path);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Writes every byte of <paramref name="data"/> into the outgoing ring, waiting for room as needed.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        Enter();
        try
        {
            long started = Environment.TickCount64;
            while (!data.IsEmpty)
            {
                long head = *_out.Head;
                long free = Free();
                if (free == 0)
                {
                    Wait(inbound: false, need: 1, started);
                    continue;
                }
                int at = (int)(head & (RingBytes - 1));
                int n = (int)Math.Min(Math.Min(free, data.Length), RingBytes - at);
                data[..n].CopyTo(new Span<byte>(_out.Data + at, n));
                Volatile.Write(ref *_out.Head, head + n);
                Signal(_out.DataSeq, _out.ReaderWaiting);
                data = data[n..];
                started = Environment.TickCount64;
            }
        }
        finally { Leave(); }
    }

    /// <summary>Reads exactly data.Length bytes from the incoming ring, waiting for them as needed.</summary>
    public void Read(Span<byte> data)
    {
        Enter();
        try
        {
            fixed (byte* p = data) Drain(p, data.Length, add: false);
        }
        finally { Leave(); }
    }

    /// <summary>
    /// Reads dst.Length fp32 values from the incoming ring and adds them into <paramref name="dst"/> where they lie, with no
    /// staging copy (the ring all-reduce's reduce step); the sums are the same elements added in the same order as
    /// copy-then-add.
    /// </summary>
    public void ReadAdd(Span<float> dst)
    {
        Enter();
        try
        {
            fixed (float* p = dst) Drain((byte*)p, (long)dst.Length * sizeof(float), add: true);
        }
        finally { Leave(); }
    }

    /// <summary>
    /// Takes <paramref name="bytes"/> from the incoming ring into <paramref name="dst"/>, copying them, or (add) summing
    /// them into it as fp32 values, whole values at a time; a value split by the ring's wrap-around is read whole first.
    /// </summary>
    private void Drain(byte* dst, long bytes, bool add)
    {
        int unit = add ? sizeof(float) : 1;
        long started = Environment.TickCount64, done = 0;
        while (done < bytes)
        {
            long tail = *_in.Tail;
            long available = Available();
            if (available < unit)
            {
                Wait(inbound: true, need: unit, started);
                continue;
            }
            int at = (int)(tail & (RingBytes - 1));
            int n = (int)Math.Min(Math.Min(available, RingBytes - at), bytes - done);
            n -= n % unit;
            if (n == 0)
            {
                float value;
                Drain((byte*)&value, sizeof(float), add: false);
                *(float*)(dst + done) += value;
                done += sizeof(float);
                continue;
            }
            if (add)
            {
                var into = new Span<float>(dst + done, n / sizeof(float));
                TensorPrimitives.Add(into, new ReadOnlySpan<float>(_in.Data + at, into.Length), into);
            }
            else Buffer.MemoryCopy(_in.Data + at, dst + done, n, n);
            Volatile.Write(ref *_in.Tail, tail + n);
            Signal(_in.SpaceSeq, _in.WriterWaiting);
            done += n;
            started = Environment.TickCount64;
        }
    }

    /// <summary>Bytes the reader may take from the incoming ring now.</summary>
    private long Available() => Volatile.Read(ref *_in.Head) - *_in.Tail;

    /// <summary>Bytes the writer may put into the outgoing ring now.</summary>
    private long Free() => RingBytes - (*_out.Head - Volatile.Read(ref *_out.Tail));

    /// <summary>Publishes progress: bumps the event's sequence and wakes the other side if it said it sleeps on it.</summary>
    private static void Signal(int* sequence, int* waiting)
    {
        Interlocked.Increment(ref *sequence);
        if (Volatile.Read(ref *waiting) != 0) Futex.Wake(sequence);
    }

    /// <summary>
    /// Sleeps until <paramref name="need"/> bytes can be read (inbound) or written. The waiting flag is raised before the
    /// condition is rechecked and the other side bumps the sequence before it reads the flag (both full fences), so a
    /// wake-up is never lost: either this side sees the progress, or the other side sees the flag, and a futex wait on a
    /// changed sequence returns at once.
    /// </summary>
    private void Wait(bool inbound, long need, long started)
    {
        int* sequence = inbound ? _in.DataSeq : _out.SpaceSeq;
        int* waiting = inbound ? _in.ReaderWaiting : _out.WriterWaiting;
        while (true)
        {
            ThrowIfClosed();
            int seen = Volatile.Read(ref *sequence);
            Interlocked.Exchange(ref *waiting, 1);
            try
            {
                if ((inbound ? Available() : Free()) >= need) return;
                long left = _timeout.Ticks / TimeSpan.TicksPerMillisecond - (Environment.TickCount64 - started);
                if (left <= 0) throw new TimeoutException($"No progress on the shared-memory data channel for {_timeout.TotalSeconds:F0} s.");
                Futex.Wait(sequence, seen, (int)Math.Min(left, (long)Slice.TotalMilliseconds));
            }
            finally { Volatile.Write(ref *waiting, 0); }
            if ((inbound ? Available() : Free()) >= need) return;
        }
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _aborted)) throw new ObjectDisposedException(nameof(SharedMemoryChannel), "The data channel was closed on this side.");
        if (Volatile.Read(ref *Closed) != 0) throw new EndOfStreamException("The peer closed the shared-memory data channel.");
    }

    private void Enter()
    {
        lock (_gate)
        {
            if (_disposed || _aborted) throw new ObjectDisposedException(nameof(SharedMemoryChannel), "The data channel was closed on this side.");
            _users++;
        }
    }

    private void Leave()
    {
        lock (_gate)
        {
            _users--;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Closes the channel for both sides and wakes every thread waiting in it, here or in the peer (what killing a socket does).</summary>
    public void Abort()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _aborted = true;
        }
        Volatile.Write(ref *Closed, 1);
        // Every sequence moves and every sleeper wakes, whether or not it raised its flag yet (a late one sees Closed).
        foreach (var ring in new[] { _out, _in })
        {
            WakeAll(ring.DataSeq);
            WakeAll(ring.SpaceSeq);
        }

        static void WakeAll(int* sequence)
        {
            Interlocked.Increment(ref *sequence);
            Futex.Wake(sequence);
        }
    }

    /// <summary>Aborts, waits (bounded) for threads still inside to leave, then unmaps; a thread that never leaves keeps the mapping alive.</summary>
    public void Dispose()
    {
        Abort();
        Unlink();
        lock (_gate)
        {
            if (_disposed) return;
            var until = Environment.TickCount64 + (long)(Slice.TotalMilliseconds * 20);
            while (_users > 0)
            {
                long left = until - Environment.TickCount64;
                if (left <= 0 || !Monitor.Wait(_gate, (int)left)) return;   // still in use: leave it mapped rather than pull memory from under it
            }
            _disposed = true;
        }
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    /// <summary>One direction: a header page (cursors and futex words on their own cache lines) and the data that follows it.</summary>
    private readonly struct Ring(byte* header)
    {
        /// <summary>Bytes ever written (only the writer stores it).</summary>
        public long* Head => (long*)header;
        /// <summary>Bytes ever read (only the reader stores it).</summary>
        public long* Tail => (long*)(header + 128);
        public int* DataSeq => (int*)(header + 256);
        public int* ReaderWaiting => (int*)(header + 260);
        public int* SpaceSeq => (int*)(header + 384);
        public int* WriterWaiting => (int*)(header + 388);
        public byte* Data => header + Page;
    }

    /// <summary>The Linux futex system call on a word of shared memory (not FUTEX_PRIVATE: the waiters are in two processes).</summary>
    private static class Futex
    {
        private const int WaitOp = 0, WakeOp = 1;
        private static readonly long Number = !OperatingSystem.IsLinux() ? -1 : RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 202,
            Architecture.Arm64 => 98,
            _ => -1,
        };

        public static bool Available => Number > 0;

        [StructLayout(LayoutKind.Sequential)]
        private struct TimeSpec { public long Seconds; public long Nanoseconds; }

        [DllImport("libc", EntryPoint = "syscall")]
        private static extern long Syscall(long number, int* address, int op, int value, TimeSpec* timeout, IntPtr address2, int value3);

        /// <summary>Sleeps while *address == expected, at most <paramref name="millis"/>; returns on a wake, a change, a signal or the timeout alike.</summary>
        public static void Wait(int* address, int expected, int millis)
        {
            var t = new TimeSpec { Seconds = millis / 1000, Nanoseconds = millis % 1000 * 1_000_000L };
            Syscall(Number, address, WaitOp, expected, &t, IntPtr.Zero, 0);
        }

        public static void Wake(int* address) => Syscall(Number, address, WakeOp, int.MaxValue, null, IntPtr.Zero, 0);
    }
}
