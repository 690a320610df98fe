using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using DistTrain.Api.Services;
using DistTrain.Contracts.Specs;
using Google.Protobuf;
using WireFormat = Google.Protobuf.WireFormat;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Http;

namespace DistTrain.Api.Hosting;

/// <summary>
/// Checks a Jobs request's body before grpc-dotnet reads it, so malformed input is INVALID_ARGUMENT with the position
/// of the problem rather than grpc-dotnet's UNKNOWN (a message that does not parse, a string field that is not UTF-8)
/// or INTERNAL (a frame whose length prefix lies). Runs for the Jobs service's paths only; a body it accepts reaches
/// grpc-dotnet untouched (peeked, not consumed).
/// </summary>
/// <remarks>
/// Checks, in order: one gRPC frame (5-byte prefix, then exactly the announced length, nothing after it); a length over
/// the message limit is left to grpc-dotnet, which answers RESOURCE_EXHAUSTED without reading it. Then the message:
/// every top-level string field strict UTF-8 (its byte offset and line named), then the whole message parses.
/// </remarks>
public sealed class RequestFrameGuard(RequestDelegate next)
{
    /// <summary>The request type of each Jobs method, by HTTP path (<c>/disttrain.v1.Jobs/SubmitJob</c>).</summary>
    private static readonly Dictionary<string, MessageDescriptor> Requests = V1.JobsReflection.Descriptor.Services
        .SelectMany(s => s.Methods).ToDictionary(m => $"/{m.Service.FullName}/{m.Name}", m => m.InputType);

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Request.Path.Value is { } path && Requests.TryGetValue(path, out var request)
            && context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true
            && await FindProblemAsync(context.Request, request, context.RequestAborted) is { } problem)
        {
            var error = ErrorTrailers.InvalidArgument("malformed request:", [problem]);
            // The google.rpc.Status with its BadRequest rides along as a binary entry.
            ErrorTrailers.WriteTrailersOnly(context.Response, error.StatusCode, error.Status.Detail, error.Trailers);
            return;
        }
        await next(context);
    }

    private static async Task<SpecError?> FindProblemAsync(HttpRequest http, MessageDescriptor request, CancellationToken ct)
    {
        var reader = http.BodyReader;
        var read = await reader.ReadAtLeastAsync(5, ct);
        var buffer = read.Buffer;
        if (buffer.Length < 5)
        {
            reader.AdvanceTo(buffer.Start, buffer.End);
            return new SpecError("", $"the body is {buffer.Length} bytes; a gRPC request is one message behind a 5-byte prefix");
        }
        byte[] prefix = buffer.Slice(0, 5).ToArray();
        long announced = BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(1));
        if (prefix[0] > 1) { reader.AdvanceTo(buffer.Start, buffer.End); return new SpecError("", $"the frame's compressed flag is {prefix[0]}, not 0 or 1"); }
        if (announced > ApiServer.MaxReceiveMessageBytes) { reader.AdvanceTo(buffer.Start); return null; }   // RESOURCE_EXHAUSTED, by grpc-dotnet
        reader.AdvanceTo(buffer.Start, buffer.End);
        read = await reader.ReadAtLeastAsync((int)announced + 6, ct);   // one byte more than the frame, to see anything after it
        buffer = read.Buffer;
        reader.AdvanceTo(buffer.Start, buffer.End);
        if (buffer.Length < 5 + announced)
            return new SpecError("", $"the frame announces a {announced}-byte message but the body ends after {buffer.Length - 5} (cut short, or a length prefix that lies)");
        if (buffer.Length > 5 + announced)
            return new SpecError("", $"the body goes on after its {announced}-byte message; a unary or server-streaming request is exactly one message");
        byte[] message = buffer.Slice(5, announced).ToArray();
        if (prefix[0] == 1)
        {
            if (http.Headers["grpc-encoding"] != "gzip") return null;   // grpc-dotnet answers an encoding it does not know
            byte[]? plain;
            try { plain = Gunzip(message); }
            catch (InvalidDataException e) { return new SpecError("", $"the message is not valid gzip: {e.Message}"); }
            if (plain is null) return null;
            message = plain;
        }
        return FindMessageProblem(message, request);
    }

    /// <summary>Walks the top-level fields (so a cut names its byte), checks string fields are UTF-8, then parses it all.</summary>
    private static SpecError? FindMessageProblem(byte[] message, MessageDescriptor request)
    {
        var input = new CodedInputStream(message);
        long fieldStart = 0;
        try
        {
            for (uint tag; (tag = input.ReadTag()) != 0; fieldStart = input.Position)
            {
                var field = request.FindFieldByNumber(WireFormat.GetTagFieldNumber(tag));
                if (field?.FieldType == FieldType.String && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
                {
                    var text = input.ReadBytes();
                    if (SpecInput.FindUtf8Problem(text.Span) is { } problem) return new SpecError(field.Name, problem);
                }
                else input.SkipLastField();
            }
            request.Parser.ParseFrom(message);
            return null;
        }
        catch (InvalidProtocolBufferException e)
        {
            return new SpecError("", $"the {request.Name} message ({message.Length} bytes) does not parse at byte {fieldStart}: {FirstSentence(e.Message)}");
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return new SpecError("", $"the {request.Name} message does not parse: {FirstSentence(e.Message)}");
        }
    }

    private static byte[]? Gunzip(byte[] compressed)
    {
        using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
        using var output = new MemoryStream();
        var chunk = new byte[81920];
        for (int n; (n = gzip.Read(chunk)) > 0;)
        {
            output.Write(chunk, 0, n);
            if (output.Length > ApiServer.MaxReceiveMessageBytes) return null;   // grpc-dotnet refuses it as too large
        }
        return output.ToArray();
    }

    private static string FirstSentence(string s) => s.Split(". ")[0].TrimEnd('.');
}
