using System.Text;
using DistTrain.Api.Services;
using DistTrain.Api.Tests.Support;
using DistTrain.Api.V1;
using DistTrain.Contracts.Specs;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Health.V1;
using Xunit.Abstractions;
using static DistTrain.Api.Tests.Support.Specs;

namespace DistTrain.Api.Tests.Functional;

/// <summary>
/// The job API as a client it did not write sees it: raw HTTP/2 gRPC frames carrying bytes no generated client sends
/// (Latin-1 and UTF-16 specs, bad bytes in a comment, a cut message, a length prefix that lies), and specs built to make
/// the error reply as large as possible. Every reply must be INVALID_ARGUMENT naming where the problem is, never
/// UNKNOWN or INTERNAL, with metadata under grpc-core's 8 KiB; the server goes on serving after each.
/// </summary>
[Collection(SharedNodeCollection.Name)]
public sealed class HostileRequestTests(SharedNode shared, ITestOutputHelper output)
{
    private const string Submit = "/disttrain.v1.Jobs/SubmitJob";
    private const int InvalidArgument = 3;

    private static byte[] SpecBody(byte[] spec) => RawGrpc.Frame(RawGrpc.BytesField(1, spec));

    private static string Line(byte[] bytes, int offset) => $"line {1 + bytes.AsSpan(0, offset).Count((byte)'\n')}";

    /// <summary>(what it is, the method, the framed body, text the message must contain).</summary>
    public static IReadOnlyList<(string Case, string Method, byte[] Body, string[] Expected)> Cases()
    {
        string tiny = TestSpecs.TinyGpt("hostile");
        byte[] latin1 = Encoding.Latin1.GetBytes(tiny.With("name: lm", "name: modèle"));
        int latin1At = Array.IndexOf(latin1, (byte)0xE8);
        byte[] comment = [.. Encoding.UTF8.GetBytes(tiny + "\n# caf"), 0xE9, (byte)'\n'];
        int commentAt = Array.IndexOf(comment, (byte)0xE9);
        byte[] utf16Bom = [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes(tiny)];
        byte[] message = new SubmitJobRequest { SpecYaml = tiny }.ToByteArray();
        return
        [
            ("Latin-1 spec", Submit, SpecBody(latin1), [$"spec_yaml: not valid UTF-8 at byte {latin1At} ({Line(latin1, latin1At)})", "0xE8"]),
            ("UTF-16 spec with a byte-order mark", Submit, SpecBody(utf16Bom), ["spec_yaml: not valid UTF-8 at byte 0 (line 1)", "UTF-16 byte-order mark"]),
            ("UTF-16LE spec without a byte-order mark", Submit, SpecBody(Encoding.Unicode.GetBytes(tiny)), ["U+0000 at byte 1 (line 1)", "UTF-16"]),
            ("UTF-16BE spec without a byte-order mark", Submit, SpecBody(Encoding.BigEndianUnicode.GetBytes(tiny)), ["U+0000 at byte 0 (line 1)", "UTF-16"]),
            ("Latin-1 byte only inside a YAML comment", Submit, SpecBody(comment), [$"not valid UTF-8 at byte {commentAt} ({Line(comment, commentAt)})"]),
            ("a control character in a comment", Submit, SpecBody(Encoding.UTF8.GetBytes(tiny + "\n# \u0001\n")), ["U+0001 at byte"]),
            ("message cut in the middle of the spec field", Submit, RawGrpc.Frame(message.AsSpan(0, 40)), ["SubmitJobRequest message (40 bytes) does not parse at byte 0"]),
            ("length prefix larger than the body", Submit, RawGrpc.Frame(message, claimedLength: message.Length + 100), [$"announces a {message.Length + 100}-byte message but the body ends after {message.Length}"]),
            ("bytes after the message", Submit, [.. RawGrpc.Frame(message), 1, 2, 3], ["goes on after its"]),
            ("a body shorter than the frame prefix", Submit, [0, 0, 0], ["the body is 3 bytes"]),
            ("an empty body", Submit, [], ["the body is 0 bytes"]),
            ("an invalid wire type", Submit, RawGrpc.Frame([0x0F, 0x01]), ["SubmitJobRequest message (2 bytes) does not parse at byte 1"]),
            ("compressed flag 7", Submit, [7, 0, 0, 0, 0], ["compressed flag is 7"]),
            ("a job id that is not UTF-8", "/disttrain.v1.Jobs/GetJob", RawGrpc.Frame(RawGrpc.BytesField(1, [0x66, 0xFF, 0x66])), ["job_id: not valid UTF-8 at byte 1 (line 1): 0xFF"]),
            ("a watch request cut short", "/disttrain.v1.Jobs/WatchJob", RawGrpc.Frame([0x0A, 0x20, 0x61]), ["WatchJobRequest message (3 bytes) does not parse at byte 0"]),
        ];
    }

    [Fact]
    public async Task Malformed_bodies_get_INVALID_ARGUMENT_naming_the_position_and_the_server_goes_on_serving()
    {
        using var channel = shared.Node.Channel();
        var health = new Health.HealthClient(channel);
        var failures = new List<string>();
        foreach (var (name, method, body, expected) in Cases())
        {
            var reply = await RawGrpc.CallAsync(shared.Node.Address, method, body);
            output.WriteLine($"{name}: {reply.GrpcStatus} {reply.GrpcMessage.Replace('\n', '|')}");
            if (reply.GrpcStatus != InvalidArgument) failures.Add($"{name}: status {reply.GrpcStatus} ({reply.GrpcMessage})");
            var details = reply.Value("grpc-status-details-bin") is { } bin ? Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(bin)) : null;
            if (details?.Details.SingleOrDefault()?.Unpack<BadRequest>().FieldViolations.Count != 1) failures.Add($"{name}: no BadRequest detail with the problem");
            if (reply.HpackSize >= ErrorTrailers.ClientMetadataLimit) failures.Add($"{name}: {reply.HpackSize} bytes of metadata");
            foreach (var text in expected.Where(t => !reply.GrpcMessage.Contains(t, StringComparison.Ordinal)))
                failures.Add($"{name}: '{text}' not in: {reply.GrpcMessage}");
            var check = await health.CheckAsync(new HealthCheckRequest { Service = "disttrain.v1.Jobs" }, deadline: DateTime.UtcNow.AddSeconds(10));
            if (check.Status != HealthCheckResponse.Types.ServingStatus.Serving) failures.Add($"{name}: health {check.Status} afterwards");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // The same raw client, with a well-formed body, is served normally: the refusals above are about the bytes.
        var ok = await RawGrpc.CallAsync(shared.Node.Address, Submit, RawGrpc.Frame(new SubmitJobRequest { SpecYaml = TestSpecs.TinyGpt("raw-ok") }.ToByteArray()));
        Assert.Equal(0, ok.GrpcStatus);
        string jobId = SubmitJobReply.Parser.ParseFrom(ok.Body.AsSpan(5)).JobId;
        await shared.Node.Client().CancelJobAsync(new CancelJobRequest { JobId = jobId }, deadline: DateTime.UtcNow.AddSeconds(30));
    }

    /// <summary>Specs built to make the error reply as large as possible; (what it is, the spec).</summary>
    public static IReadOnlyList<(string Case, string Yaml)> LargeReplyCases()
    {
        string tiny = TestSpecs.TinyGpt("big-errors");
        string Keys(int count, Func<int, string> key) => string.Concat(Enumerable.Range(0, count).Select(i => $"{key(i)}: 1\n")) + tiny;
        return
        [
            ("5,000 unknown keys", Keys(5000, i => $"k{i}")),
            ("one 100 KB key", Keys(1, _ => new string('x', 100_000))),
            ("200 keys of 1,000 characters", Keys(200, i => $"{i}" + new string('x', 1000))),
            ("200 keys of 300 × '€'", Keys(200, i => $"{i}" + string.Concat(Enumerable.Repeat("€", 300)))),
            ("one 100 KB stage name", tiny.With("name: lm", "name: " + new string('n', 100_000))),
            ("one 100 KB value", tiny.With("layers: 1", "layers: " + new string('9', 100_000))),
            ("2,000 keys of 30 × 'ü'", Keys(2000, i => $"{i}" + new string('ü', 30))),
            ("one key of 20,000 × '€' (nine-fold when percent-encoded)", Keys(1, _ => string.Concat(Enumerable.Repeat("€", 20_000)))),
            ("one key of 10,000 emoji (surrogate pairs)", Keys(1, _ => string.Concat(Enumerable.Repeat("😀", 10_000)))),
            ("1,000 keys of 60 × '%'", Keys(1000, i => $"{i}" + new string('%', 60))),
            ("64 stages with every field wrong", "name: many\nstages:\n" + string.Concat(Enumerable.Range(0, 64).Select(i =>
                $"  - {{name: s{i}{new string('é', 40)}, kind: pretrain, objective: clm, needs: [ghost{i}{new string('ü', 40)}], " +
                "model: {family: gpt, layers: 0, hidden: 7, heads: 0, ffn: -1, max_len: 0, vocab_size: 3, dropout: 9}, " +
                "data: {corpus: brown, seq_len: 0, max_examples: 0}, train: {steps: -1, batch_size: 0, lr: 99}}\n"))),
        ];
    }

    [Fact]
    public async Task Error_replies_to_hostile_specs_fit_8_KiB_of_metadata_as_grpc_core_counts_it()
    {
        var failures = new List<string>();
        foreach (var (name, yaml) in LargeReplyCases())
        {
            Assert.True(Encoding.UTF8.GetByteCount(yaml) <= SpecLimits.MaxSpecBytes, name);
            var reply = await RawGrpc.CallAsync(shared.Node.Address, Submit, RawGrpc.Frame(new SubmitJobRequest { SpecYaml = yaml }.ToByteArray()));
            var details = reply.Value("grpc-status-details-bin") is { } bin ? Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(bin)) : null;
            var violations = details?.Details.Single().Unpack<BadRequest>().FieldViolations ?? [];
            output.WriteLine($"{name}: metadata {reply.HpackSize} B (grpc-message {reply.Value("grpc-message")?.Length} B, details " +
                $"{reply.Value("grpc-status-details-bin")?.Length} B), {violations.Count} violations listed; {reply.GrpcMessage.Split('\n').Last()}");
            if (reply.GrpcStatus != InvalidArgument) failures.Add($"{name}: status {reply.GrpcStatus}");
            if (reply.HpackSize >= ErrorTrailers.ClientMetadataLimit) failures.Add($"{name}: {reply.HpackSize} bytes of metadata");
            if (details is null || details.Message != reply.GrpcMessage) failures.Add($"{name}: the detail's message differs from grpc-message");
            if (violations.Count == 0 || violations.Any(v => v.Field.Length > ErrorTrailers.MaxFieldChars || v.Description.Length == 0))
                failures.Add($"{name}: violations {string.Join(", ", violations.Select(v => v.Field.Length))}");
            if (reply.GrpcMessage.Split('\n').Skip(1).Any(l => l.Length > ErrorTrailers.MaxLineChars)) failures.Add($"{name}: a line over {ErrorTrailers.MaxLineChars} chars");
            if (reply.GrpcMessage.Contains('\uFFFD')) failures.Add($"{name}: a character was cut in half");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Many_errors_are_counted_past_the_listed_ones()
    {
        string yaml = string.Concat(Enumerable.Range(0, 5000).Select(i => $"k{i}: 1\n")) + TestSpecs.TinyGpt("counted");
        var reply = await RawGrpc.CallAsync(shared.Node.Address, Submit, RawGrpc.Frame(new SubmitJobRequest { SpecYaml = yaml }.ToByteArray()));
        var lines = reply.GrpcMessage.Split('\n');
        int listed = lines.Length - 2;   // the title and the count
        Assert.InRange(listed, 1, ErrorTrailers.MaxListed);
        Assert.Equal($"… and {5000 - listed} more", lines[^1]);
        Assert.StartsWith("k0: unknown key", lines[1]);
    }

    [Fact]
    public async Task A_spec_of_exactly_the_limit_is_accepted_and_one_byte_more_is_refused_naming_the_limit()
    {
        var client = shared.Node.Client();
        string atLimit = TestSpecs.TinyGpt("at-limit").PaddedTo(SpecLimits.MaxSpecBytes);
        Assert.Equal(SpecLimits.MaxSpecBytes, Encoding.UTF8.GetByteCount(atLimit));
        var accepted = await client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = atLimit }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.False(string.IsNullOrEmpty(accepted.JobId));
        await client.CancelJobAsync(new CancelJobRequest { JobId = accepted.JobId }, deadline: DateTime.UtcNow.AddSeconds(30));

        string over = TestSpecs.TinyGpt("over-limit").PaddedTo(SpecLimits.MaxSpecBytes + 1);
        var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() =>
            client.SubmitJobAsync(new SubmitJobRequest { SpecYaml = over }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains($"spec: {SpecLimits.MaxSpecBytes + 1} bytes, over the limit of {SpecLimits.MaxSpecBytes} bytes", e.Status.Detail);
    }
}
