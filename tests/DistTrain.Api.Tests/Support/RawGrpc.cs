using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;

namespace DistTrain.Api.Tests.Support;

/// <summary>
/// A gRPC client that is not grpc-dotnet's: plain HTTP/2 with hand-built frames, so a test can send bytes no generated
/// client would (a body that is not protobuf, a length prefix that lies, a string field that is not UTF-8) and see
/// every response header and trailer as another gRPC stack would.
/// </summary>
public static class RawGrpc
{
    /// <summary>What came back: the status, its message (percent-decoded), and every header and trailer.</summary>
    public sealed record Reply(int HttpStatus, int? GrpcStatus, string GrpcMessage, IReadOnlyList<(string Name, string Value)> Metadata, byte[] Body)
    {
        /// <summary>
        /// The metadata size as grpc-core counts it against its 8 KiB default (<c>grpc.max_metadata_size</c>): the
        /// HPACK size of each entry, name + value + 32 bytes, summed over the response headers and trailers.
        /// </summary>
        public int HpackSize => Metadata.Sum(m => m.Name.Length + m.Value.Length + 32);

        public string? Value(string name) => Metadata.FirstOrDefault(m => m.Name == name).Value;
    }

    /// <summary>A gRPC frame: compressed flag 0, then the big-endian length, then the message.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> message, int? claimedLength = null)
    {
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)(claimedLength ?? message.Length));
        message.CopyTo(frame.AsSpan(5));
        return frame;
    }

    /// <summary>A protobuf length-delimited field (wire type 2) holding raw bytes: a string field without any encoding check.</summary>
    public static byte[] BytesField(int number, ReadOnlySpan<byte> value)
    {
        using var stream = new MemoryStream();
        var output = new Google.Protobuf.CodedOutputStream(stream);
        output.WriteTag(number, Google.Protobuf.WireFormat.WireType.LengthDelimited);
        output.WriteLength(value.Length);
        output.Flush();
        stream.Write(value);
        return stream.ToArray();
    }

    /// <summary>POSTs <paramref name="body"/> (already framed) to <paramref name="method"/>, e.g. <c>/disttrain.v1.Jobs/SubmitJob</c>.</summary>
    public static async Task<Reply> CallAsync(string address, string method, byte[] body)
    {
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Post, address + method)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
        byte[] replyBody = await response.Content.ReadAsByteArrayAsync();
        var metadata = new List<(string, string)> { (":status", ((int)response.StatusCode).ToString()) };
        foreach (var headers in new HttpHeaders[] { response.Headers, response.Content.Headers, response.TrailingHeaders })
            foreach (var (name, values) in headers.NonValidated)
                foreach (var value in values) metadata.Add((name.ToLowerInvariant(), value));
        var reply = new Reply((int)response.StatusCode, null, "", metadata, replyBody);
        return reply with
        {
            GrpcStatus = int.TryParse(reply.Value("grpc-status"), out int s) ? s : null,
            GrpcMessage = Uri.UnescapeDataString(reply.Value("grpc-message") ?? ""),
        };
    }
}
