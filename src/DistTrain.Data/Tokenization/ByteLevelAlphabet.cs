namespace DistTrain.Data.Tokenization;

/// <summary>GPT-2's byte-level alphabet: each byte as one printable character, the form vocab.json and merges.txt are written in.</summary>
/// <remarks>
/// Printable Latin-1 bytes ('!'…'~', '¡'…'¬', '®'…'ÿ') stand for themselves; the other 68 bytes (space, control
/// characters, …) take the characters from U+0100 upwards in byte order, so space is 'Ġ' and newline 'Ċ'.
/// </remarks>
public static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = new char[256];
    private static readonly Dictionary<char, byte> ByteOfChar = new();

    static ByteLevelAlphabet()
    {
        var next = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            CharOfByte[b] = printable ? (char)b : (char)(256 + next++);
            ByteOfChar[CharOfByte[b]] = (byte)b;
        }
    }

    /// <summary>The character byte <paramref name="b"/> is written as.</summary>
    public static char Char(byte b) => CharOfByte[b];

    /// <summary>A string's UTF-8 bytes written in the alphabet (how a byte-level vocabulary spells it).</summary>
    public static string Spell(string text) => string.Concat(System.Text.Encoding.UTF8.GetBytes(text).Select(b => CharOfByte[b]));

    /// <summary>The bytes a token of the alphabet stands for, or null when it has a character outside it.</summary>
    public static byte[]? Bytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!ByteOfChar.TryGetValue(token[i], out var b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
