using DistTrain.Contracts.Specs;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace DistTrain.Api.Services;

/// <summary>
/// Error replies sized for every gRPC client: grpc-core based ones (Python, C++, Ruby, PHP…) accept 8 KiB of response
/// metadata by default and turn a larger error into RESOURCE_EXHAUSTED, hiding it. Everything echoed is cut, and an
/// error lists only as many problems as fit <see cref="Budget"/>, counting the rest.
/// </summary>
/// <remarks>
/// Sizes are counted the way grpc-core counts them (HPACK: name + value + 32 per entry) on the encoded values: the
/// message percent-encoded as grpc-message carries it, the google.rpc.Status base64-encoded in grpc-status-details-bin.
/// The rest of a reply's metadata (:status, content-type, date, server) is about 250 bytes of the remaining 2 KiB.
/// </remarks>
public static class ErrorTrailers
{
    /// <summary>grpc-core's default limit on a reply's metadata (<c>grpc.max_metadata_size</c>).</summary>
    public const int ClientMetadataLimit = 8 * 1024;

    /// <summary>Most bytes grpc-status, grpc-message and grpc-status-details-bin may take together, HPACK-counted.</summary>
    public const int Budget = 6 * 1024;

    /// <summary>Longest problem line, in characters; a longer one is cut with "…".</summary>
    public const int MaxLineChars = 160;

    /// <summary>Longest field path in a field violation.</summary>
    public const int MaxFieldChars = 100;

    /// <summary>Most problems one reply lists before counting the rest; fewer when their text does not fit the budget.</summary>
    public const int MaxListed = 50;

    /// <summary>
    /// INVALID_ARGUMENT whose message is <paramref name="title"/> followed by the problems that fit, one per line
    /// (then "… and N more"), and whose google.rpc.BadRequest detail carries each listed one as a field violation
    /// (field = its path).
    /// </summary>
    public static RpcException InvalidArgument(string title, IReadOnlyList<SpecError> problems)
    {
        var listedProblems = problems.Take(MaxListed).ToList();
        // The largest k whose reply fits; k = 0 always fits (title and count only), so the budget holds by construction.
        int listed = listedProblems.Count;
        while (listed > 0 && Size(Build(title, listedProblems, listed, problems.Count)) > Budget) listed--;
        return Build(title, listedProblems, listed, problems.Count).ToRpcException();
    }

    /// <summary>The HPACK-counted size of the three status entries a reply carries for <paramref name="status"/>.</summary>
    public static int Size(Google.Rpc.Status status) =>
        Entry("grpc-status", status.Code.ToString())
        + Entry("grpc-message", PercentEncode(status.Message))
        + Entry("grpc-status-details-bin", Convert.ToBase64String(status.ToByteArray()));

    /// <summary>
    /// Answers a gRPC call before any handler runs (a middleware refusing it): gRPC's trailers-only reply, an HTTP 200
    /// whose headers carry the status, its message and any binary trailers, as grpc-dotnet's own early errors do.
    /// </summary>
    public static void WriteTrailersOnly(Microsoft.AspNetCore.Http.HttpResponse response, StatusCode code, string message, Metadata? trailers = null)
    {
        response.StatusCode = Microsoft.AspNetCore.Http.StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)code).ToString();
        response.Headers["grpc-message"] = PercentEncode(message);
        foreach (var entry in trailers?.Where(e => e.IsBinary) ?? [])
            response.Headers[entry.Key] = Convert.ToBase64String(entry.ValueBytes);
    }

    /// <summary>
    /// grpc-message's encoding (gRPC over HTTP/2): bytes outside printable ASCII, and '%', become %XX of their UTF-8.
    /// A character can grow nine-fold, which is why budgets are counted after encoding.
    /// </summary>
    public static string PercentEncode(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(text))
            sb.Append(b is >= 0x20 and <= 0x7E and not (byte)'%' ? (char)b : $"%{b:X2}");
        return sb.ToString();
    }

    /// <summary><paramref name="text"/> cut to <paramref name="max"/> characters with "…", never inside a surrogate pair.</summary>
    public static string Cut(string text, int max)
    {
        if (text.Length <= max) return text;
        int end = max - 1;
        if (char.IsHighSurrogate(text[end - 1])) end--;
        return text[..end] + "…";
    }

    private static int Entry(string name, string value) => name.Length + value.Length + 32;

    private static Google.Rpc.Status Build(string title, List<SpecError> problems, int listed, int total)
    {
        var message = new StringBuilder(title);
        foreach (var problem in problems.Take(listed)) message.Append('\n').Append(Cut(problem.ToString(), MaxLineChars));
        if (total > listed) message.Append($"\n… and {total - listed} more");
        var badRequest = new BadRequest();
        foreach (var problem in problems.Take(listed))
        {
            // The line's length bounds the violation's too: a path cut to MaxFieldChars, the message to what the line kept.
            var field = Cut(problem.Path, MaxFieldChars);
            badRequest.FieldViolations.Add(new BadRequest.Types.FieldViolation { Field = field, Description = Cut(problem.Message, MaxLineChars) });
        }
        return new Google.Rpc.Status { Code = (int)Code.InvalidArgument, Message = message.ToString(), Details = { Any.Pack(badRequest) } };
    }
}
