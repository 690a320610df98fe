using System.Text;

namespace DistTrain.Contracts.Specs;

/// <summary>The one mapping between C# enum members and their snake_case YAML names (MacroF1 ↔ macro_f1).</summary>
public static class SpecNames
{
    /// <summary>The YAML name of an enum value.</summary>
    public static string Of<T>(T value) where T : struct, Enum => Snake(value.ToString());

    /// <summary>All YAML names of an enum, in declaration order, for error messages and docs.</summary>
    public static IReadOnlyList<string> All<T>() where T : struct, Enum => Enum.GetValues<T>().Select(Of).ToList();

    /// <summary>Parses a YAML name exactly (case-sensitive, snake_case); numbers are not accepted.</summary>
    public static bool TryParse<T>(string text, out T value) where T : struct, Enum
    {
        foreach (var candidate in Enum.GetValues<T>())
        {
            if (Of(candidate) == text) { value = candidate; return true; }
        }
        value = default;
        return false;
    }

    private static string Snake(string pascal)
    {
        var sb = new StringBuilder(pascal.Length + 4);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
