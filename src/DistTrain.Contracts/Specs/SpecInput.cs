using System.Text;
using System.Text.Unicode;

namespace DistTrain.Contracts.Specs;

/// <summary>
/// What a spec's text may contain before any YAML is read: UTF-8, and YAML's printable characters (tab, line breaks,
/// printable Unicode) without NEL (U+0085). Problems name their byte offset and line, so a client that sent Latin-1,
/// UTF-16 or a stray control byte can find it.
/// </summary>
/// <remarks>
/// Refusing the C0/C1 controls also bounds what a spec costs on the wire: Akka's JSON serializer writes each allowed
/// character in at most twice its UTF-8 bytes (a quote, backslash, tab or line break becomes two), and the frame size
/// in cluster-config/akka.hocon is set from that (see <see cref="SpecLimits.MaxWireExpansion"/>).
/// </remarks>
public static class SpecInput
{
    /// <summary>
    /// Whether a spec may be submitted at all: at most <see cref="SpecLimits.MaxSpecBytes"/> UTF-8 bytes, and only
    /// allowed characters. Null when it may; else the error, at path <c>spec</c>. Checked before a spec is sent to the
    /// job manager (its size on the wire is bounded by then) and again by the job manager.
    /// </summary>
    public static SpecError? Admit(string text)
    {
        int bytes = Encoding.UTF8.GetByteCount(text);
        if (bytes > SpecLimits.MaxSpecBytes)
            return new SpecError("spec", $"{bytes} bytes, over the limit of {SpecLimits.MaxSpecBytes} bytes (SpecLimits.MaxSpecBytes)");
        return FindProblem(text) is { } problem ? new SpecError("spec", problem) : null;
    }

    /// <summary>The first byte sequence that is not UTF-8, as "not valid UTF-8 at byte N (line L) …"; null when all is UTF-8.</summary>
    public static string? FindUtf8Problem(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        if (Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false) != System.Buffers.OperationStatus.InvalidData)
            return null;
        string hint = bytes is [0xFF, 0xFE, ..] or [0xFE, 0xFF, ..] ? " (the text starts with a UTF-16 byte-order mark)" : "";
        return $"not valid UTF-8 at byte {read} (line {Line(bytes[..read])}): 0x{bytes[read]:X2}{hint}; strings must be UTF-8";
    }

    /// <summary>The first character a spec may not contain, with its byte offset and line; null when there is none.</summary>
    public static string? FindProblem(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (Allowed(c) || (c == '\uFEFF' && i == 0)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            string where = $"at byte {Encoding.UTF8.GetByteCount(text.AsSpan(0, i))} (line {1 + text.AsSpan(0, i).Count('\n')})";
            string hint = c == '\0' ? "; NUL suggests UTF-16: send UTF-8" : "";
            return $"character U+{(int)c:X4} {where} is not allowed in YAML text{hint}";
        }
        return null;
    }

    private static bool Allowed(char c) =>
        c is '\t' or '\n' or '\r' or (>= ' ' and <= '~') or (>= '\u00A0' and <= '\uD7FF') or (>= '\uE000' and <= '\uFFFD');

    private static int Line(ReadOnlySpan<byte> before) => 1 + before.Count((byte)'\n');
}
