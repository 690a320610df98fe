using System.Text;
using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>What a submitted spec's bytes and characters may be, and where a problem is reported.</summary>
public sealed class SpecInputTests
{
    [Theory]
    [InlineData("name: a\n")]
    [InlineData("\uFEFFname: a\r\n")]                    // a UTF-8 byte-order mark at the start, CRLF line ends
    [InlineData("name: a\t# tabs, é, 漢字 and 😀 are text\n")]
    public void YAML_text_passes(string text)
    {
        Assert.Null(DistTrain.Contracts.Specs.SpecInput.FindProblem(text));
        Assert.Null(DistTrain.Contracts.Specs.SpecInput.FindUtf8Problem(Encoding.UTF8.GetBytes(text)));
        Assert.Null(DistTrain.Contracts.Specs.SpecInput.Admit(text));
    }

    [Theory]
    [InlineData("a\0b", "U+0000 at byte 1 (line 1)")]
    [InlineData("é\n\u0001", "U+0001 at byte 3 (line 2)")]   // é is two bytes
    [InlineData("a\u0085", "U+0085 at byte 1")]               // NEL: a C1 control (and six bytes in JSON)
    [InlineData("a\u007F", "U+007F at byte 1")]
    [InlineData("a\uFFFE", "U+FFFE at byte 1")]
    public void Controls_and_non_characters_are_refused_at_their_byte_and_line(string text, string where)
    {
        string? problem = DistTrain.Contracts.Specs.SpecInput.FindProblem(text);
        Assert.NotNull(problem);
        Assert.Contains(where, problem);
        Assert.Equal("spec", DistTrain.Contracts.Specs.SpecInput.Admit(text)?.Path);
    }

    [Fact]
    public void A_lone_surrogate_is_refused()   // built here: xUnit's theory data would replace it on the way
    {
        string text = "a" + (char)0xD800 + "b";
        Assert.Contains("U+D800 at byte 1 (line 1)", DistTrain.Contracts.Specs.SpecInput.FindProblem(text));
    }

    [Theory]
    [InlineData(new byte[] { 0x61, 0x0A, 0xE9, 0x0A }, "at byte 2 (line 2): 0xE9")]          // Latin-1 é
    [InlineData(new byte[] { 0xFF, 0xFE, 0x61, 0x00 }, "at byte 0 (line 1): 0xFF (the text starts with a UTF-16 byte-order mark)")]
    [InlineData(new byte[] { 0x61, 0xC0, 0x80 }, "at byte 1 (line 1): 0xC0")]                 // an overlong NUL
    [InlineData(new byte[] { 0x61, 0xED, 0xA0, 0x80 }, "at byte 1 (line 1): 0xED")]           // an encoded surrogate
    [InlineData(new byte[] { 0x61, 0x62, 0xE2, 0x82 }, "at byte 2 (line 1): 0xE2")]           // cut in the middle of €
    public void Bytes_that_are_not_UTF_8_are_named_by_offset_and_line(byte[] bytes, string where)
    {
        string? problem = DistTrain.Contracts.Specs.SpecInput.FindUtf8Problem(bytes);
        Assert.NotNull(problem);
        Assert.Contains(where, problem);
    }

    [Fact]
    public void The_size_limit_is_inclusive_and_named()
    {
        string head = "name: a\n# ";
        string atLimit = head + new string('x', SpecLimits.MaxSpecBytes - head.Length);
        Assert.Null(DistTrain.Contracts.Specs.SpecInput.Admit(atLimit));
        Assert.Equal($"spec: {SpecLimits.MaxSpecBytes + 1} bytes, over the limit of {SpecLimits.MaxSpecBytes} bytes (SpecLimits.MaxSpecBytes)",
            DistTrain.Contracts.Specs.SpecInput.Admit(atLimit + "x")?.ToString());
        // Bytes, not characters: 'é' is two.
        Assert.NotNull(DistTrain.Contracts.Specs.SpecInput.Admit(head + new string('é', SpecLimits.MaxSpecBytes / 2)));
    }
}
