using System.Net.Sockets;

namespace DistTrain.Collective;

/// <summary>Exact-length socket reads and writes; a short read means the peer closed.</summary>
internal static class SocketIo
{
    /// <summary>Blocking send of every byte (the socket's SendTimeout bounds each kernel call).</summary>
    public static void SendExact(Socket socket, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = socket.Send(data, SocketFlags.None);
            if (n <= 0) throw new SocketException((int)SocketError.ConnectionReset);
            data = data[n..];
        }
    }

    /// <summary>Blocking receive of exactly data.Length bytes (ReceiveTimeout bounds each kernel call).</summary>
    public static void ReceiveExact(Socket socket, Span<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = socket.Receive(data, SocketFlags.None);
            if (n == 0) throw new EndOfStreamException("Peer closed the connection.");
            data = data[n..];
        }
    }

    /// <summary>Closes a socket so that any thread blocked in it wakes up now.</summary>
    public static void Kill(Socket? socket)
    {
        if (socket is null) return;
        // shutdown() is what wakes a thread blocked in recv()/send() on Linux; Dispose alone may not.
        try { socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }

    public static bool IsTimeout(Exception e) => e is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock };
}
