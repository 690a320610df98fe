using System.Text;
using DistTrain.Api.Services;
using DistTrain.Contracts.Specs;
using Google.Rpc;
using Grpc.Core;

namespace DistTrain.Api.Tests.Services;

/// <summary>The error-size budget by construction: random hostile problem lists never exceed it. No server.</summary>
public sealed class ErrorTrailersTests
{
    private static readonly string[] Alphabets = ["x", "%", "é", "€", "😀", "漢", "\n"];

    [Fact]
    public void Hostile_problem_lists_always_fit_the_budget_and_list_what_fits()
    {
        var rng = new Random(12);
        for (int trial = 0; trial < 300; trial++)
        {
            int count = rng.Next(1, 4000);
            var problems = Enumerable.Range(0, count).Select(i =>
            {
                string alphabet = Alphabets[rng.Next(Alphabets.Length)];
                string path = $"stages[{i}]." + string.Concat(Enumerable.Repeat(alphabet, rng.Next(0, 300)));
                return new SpecError(path, string.Concat(Enumerable.Repeat(Alphabets[rng.Next(Alphabets.Length)], rng.Next(0, 3000))));
            }).ToList();
            var e = ErrorTrailers.InvalidArgument("invalid job spec:", problems);
            var status = e.GetRpcStatus()!;
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.True(ErrorTrailers.Size(status) <= ErrorTrailers.Budget, $"trial {trial}: {ErrorTrailers.Size(status)} bytes");
            var violations = status.Details.Single().Unpack<BadRequest>().FieldViolations;
            Assert.True(violations.Count >= 1, $"trial {trial}: nothing listed");
            Assert.Equal(count > violations.Count, status.Message.EndsWith($"… and {count - violations.Count} more", StringComparison.Ordinal));
            Assert.DoesNotContain('\uFFFD', Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(status.Message)));   // no half pairs
        }
    }

    [Fact]
    public void Field_violations_carry_each_error_as_the_validator_gave_it()
    {
        // Not re-parsed from text: a request-level problem whose message holds ": " keeps an empty field, and a
        // message with ": " of its own stays whole.
        var e = ErrorTrailers.InvalidArgument("invalid:", [
            new SpecError("", "the SubmitJobRequest message does not parse: truncated"),
            new SpecError("stages[0].model.layers", "must be at least 1: got 0"),
        ]);
        var violations = e.GetRpcStatus()!.Details.Single().Unpack<BadRequest>().FieldViolations;
        Assert.Equal(("", "the SubmitJobRequest message does not parse: truncated"), (violations[0].Field, violations[0].Description));
        Assert.Equal(("stages[0].model.layers", "must be at least 1: got 0"), (violations[1].Field, violations[1].Description));
        Assert.Equal("invalid:\nthe SubmitJobRequest message does not parse: truncated\nstages[0].model.layers: must be at least 1: got 0", e.Status.Detail);
    }

    [Theory]
    [InlineData("abc", "abc")]
    [InlineData("a%b", "a%25b")]
    [InlineData("é\n", "%C3%A9%0A")]
    public void Messages_are_percent_encoded_as_grpc_message_carries_them(string text, string encoded) =>
        Assert.Equal(encoded, ErrorTrailers.PercentEncode(text));

    [Fact]
    public void Cutting_never_splits_a_surrogate_pair()
    {
        string emoji = string.Concat(Enumerable.Repeat("😀", 10));
        for (int max = 2; max < 20; max++)
            Assert.DoesNotContain('\uFFFD', Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(ErrorTrailers.Cut(emoji, max))));
    }
}
