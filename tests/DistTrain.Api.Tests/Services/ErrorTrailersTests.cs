using System.Text;
using DistTrain.Api.Services;
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
                return $"{path}: " + string.Concat(Enumerable.Repeat(Alphabets[rng.Next(Alphabets.Length)], rng.Next(0, 3000)));
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
