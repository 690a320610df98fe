using System.Text.Json;

namespace DistTrain.Deploy.Tests.Images;

/// <summary>A Dockerfile read into its build stages and instructions (continuation lines joined, comments dropped).</summary>
public sealed record Dockerfile(IReadOnlyList<Dockerfile.Stage> Stages)
{
    public sealed record Instruction(string Keyword, string Arguments);

    public sealed record Stage(string Base, string? Name, IReadOnlyList<Instruction> Instructions)
    {
        public IEnumerable<string> All(string keyword) =>
            Instructions.Where(i => i.Keyword == keyword).Select(i => i.Arguments);
        public string? Last(string keyword) => All(keyword).LastOrDefault();
    }

    public Stage Final => Stages[^1];

    public static Dockerfile Load(string path) => Parse(File.ReadAllText(path));

    public static Dockerfile Parse(string text)
    {
        var logical = new List<string>();
        string pending = "";
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (pending.Length == 0 && line.TrimStart().StartsWith('#')) continue;
            if (line.EndsWith('\\')) { pending += line[..^1] + " "; continue; }
            logical.Add(pending + line);
            pending = "";
        }
        if (pending.Length > 0) throw new FormatException("the last line ends with a continuation");

        var stages = new List<Stage>();
        List<Instruction>? current = null;
        foreach (var line in logical.Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            int space = line.IndexOf(' ');
            if (space < 0) throw new FormatException($"instruction without arguments: {line}");
            string keyword = line[..space].ToUpperInvariant(), args = line[(space + 1)..].Trim();
            if (keyword == "FROM")
            {
                var parts = args.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                current = [];
                stages.Add(new Stage(parts[0], parts.Length == 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[2] : null, current));
            }
            else
            {
                if (current is null) throw new FormatException($"{keyword} before the first FROM");
                current.Add(new Instruction(keyword, args));
            }
        }
        return new Dockerfile(stages);
    }

    /// <summary>The exec form of ENTRYPOINT/CMD: a JSON array of strings.</summary>
    public static string[] ExecForm(string arguments) =>
        JsonSerializer.Deserialize<string[]>(arguments) ?? throw new FormatException($"not an exec-form array: {arguments}");
}
