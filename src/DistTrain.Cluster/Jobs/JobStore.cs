using LinqToDB;

namespace DistTrain.Cluster.Jobs;

/// <summary>
/// Where the job manager's journal lives (Akka.Persistence.Sql): SQLite, embedded, for a local cluster; PostgreSQL
/// in a real one, because a SQLite file on one pod is invisible to the pod that takes the singleton over.
/// </summary>
public sealed record JobStore(string Provider, string ConnectionString)
{
    public bool IsSqlite => Provider == ProviderName.SQLiteMS;

    /// <summary>Reads the <c>DISTTRAIN_JOB_STORE</c> form: <c>sqlite:PATH</c>, <c>postgresql:CONNECTION-STRING</c>, or null for <c>RUN_ROOT/jobs.db</c>.</summary>
    public static JobStore Parse(string? setting, string runRoot)
    {
        if (string.IsNullOrWhiteSpace(setting)) return Sqlite(Path.Combine(runRoot, "jobs.db"));
        int colon = setting.IndexOf(':');
        string kind = colon < 0 ? setting : setting[..colon], rest = colon < 0 ? "" : setting[(colon + 1)..];
        return kind switch
        {
            "sqlite" when rest.Length > 0 => Sqlite(Path.GetFullPath(rest)),
            "postgresql" when rest.Length > 0 => new JobStore(ProviderName.PostgreSQL15, rest),
            _ => throw new ArgumentException($"job store '{Describe(setting)}' is not sqlite:PATH or postgresql:CONNECTION-STRING"),
        };
    }

    private static JobStore Sqlite(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return new JobStore(ProviderName.SQLiteMS, $"Data Source={path}");
    }

    /// <summary>For logs and errors: the kind and target without any password.</summary>
    public override string ToString() => IsSqlite ? $"sqlite ({ConnectionString["Data Source=".Length..]})" : "postgresql " + Describe(ConnectionString);

    private static string Describe(string s) =>
        string.Join(';', s.Split(';').Where(p => !p.TrimStart().StartsWith("password", StringComparison.OrdinalIgnoreCase)));
}
