using System.Security.Cryptography;
using System.Text;

namespace DistTrain.Api.Security;

/// <summary>
/// The bearer token(s) the job API accepts right now. Either fixed for the process's life (<c>DISTTRAIN_API_TOKEN</c>)
/// or read from a file (<c>DISTTRAIN_API_TOKEN_FILE</c>, a Kubernetes Secret mount) and re-read every poll interval, so a
/// rotated Secret takes effect without a restart. After a change the previous token stays valid for the grace period,
/// so clients can switch over; only the one previous token is kept. Tokens are held as SHA-256 digests and compared in
/// constant time, so neither their content nor their length leaks through timing.
/// </summary>
public sealed class ApiTokenSource : IDisposable
{
    private readonly object _gate = new();
    private readonly string? _path;
    private readonly TimeSpan _grace;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly Timer? _poll;
    private byte[]? _current;
    private (byte[] Digest, DateTimeOffset Until)? _previous;

    private ApiTokenSource(byte[]? current, string? path, TimeSpan grace, TimeSpan poll, TimeProvider time, Action<string>? log)
    {
        _current = current;
        _path = path;
        _grace = grace;
        _time = time;
        _log = log ?? (line => Console.Error.WriteLine(line));
        if (path is not null) _poll = new Timer(_ => Reload(), null, poll, poll);
    }

    /// <summary>No token: every call is allowed (local mode only; <c>NodeSettings.Validate</c> refuses it elsewhere).</summary>
    public static ApiTokenSource Anonymous() => new(null, null, TimeSpan.Zero, Timeout.InfiniteTimeSpan, TimeProvider.System, null);

    /// <summary>One token for the process's life.</summary>
    public static ApiTokenSource Fixed(string token) =>
        new(Digest(string.IsNullOrWhiteSpace(token) ? throw new ArgumentException("the API token is empty") : token.Trim()),
            null, TimeSpan.Zero, Timeout.InfiniteTimeSpan, TimeProvider.System, null);

    /// <summary>Reads the token from <paramref name="path"/> now (a missing or empty file is an error) and again every <paramref name="poll"/>.</summary>
    public static ApiTokenSource FromFile(string path, TimeSpan grace, TimeSpan poll, TimeProvider? time = null, Action<string>? log = null)
    {
        if (grace < TimeSpan.Zero) throw new ArgumentException($"the token grace period must not be negative, got {grace}");
        if (poll <= TimeSpan.Zero) throw new ArgumentException($"the token poll interval must be positive, got {poll}");
        string token = Read(path) ?? throw new ArgumentException($"the API token file {path} is empty");
        return new ApiTokenSource(Digest(token), path, grace, poll, time ?? TimeProvider.System, log);
    }

    /// <summary>False when anonymous calls are allowed.</summary>
    public bool Required { get { lock (_gate) return _current is not null; } }

    /// <summary>Whether <paramref name="presented"/> is the current token, or the previous one within its grace period.</summary>
    public bool Accepts(string presented)
    {
        var digest = Digest(presented);
        lock (_gate)
        {
            if (_current is null) return true;
            bool ok = CryptographicOperations.FixedTimeEquals(digest, _current);
            // Both comparisons always run, so timing does not tell which token matched.
            bool previous = _previous is { } p && CryptographicOperations.FixedTimeEquals(digest, p.Digest) && _time.GetUtcNow() < p.Until;
            return ok | previous;
        }
    }

    /// <summary>
    /// Re-reads the file (the poll timer calls this). A changed token becomes current and the old one is accepted until
    /// the grace period ends; a missing, unreadable or empty file keeps the current token (a Secret being swapped
    /// must not lock everyone out) and is logged, without any token's content.
    /// </summary>
    public void Reload()
    {
        if (_path is null) return;
        string? token;
        try { token = Read(_path); }
        catch (ArgumentException e)
        {
            _log($"job API: keeping the current bearer token: {e.Message}");
            return;
        }
        if (token is null)
        {
            _log($"job API: keeping the current bearer token: {_path} is empty");
            return;
        }
        var digest = Digest(token);
        lock (_gate)
        {
            if (_current is not null && CryptographicOperations.FixedTimeEquals(digest, _current)) return;
            var until = _time.GetUtcNow() + _grace;
            _previous = _grace > TimeSpan.Zero && _current is not null ? (_current, until) : null;
            _current = digest;
            _log(_grace > TimeSpan.Zero
                ? $"job API: bearer token rotated from {_path}; the previous token is accepted until {until:u}"
                : $"job API: bearer token rotated from {_path}; the previous token is refused from now on");
        }
    }

    private static string? Read(string path)
    {
        try
        {
            // Kubernetes mounts a Secret key as a symlink into ..data, which the kubelet swaps atomically: reading the
            // path always yields either the whole old token or the whole new one.
            string s = File.ReadAllText(path).Trim();
            return s.Length == 0 ? null : s;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the API token file {path}: {e.Message}", e);
        }
    }

    private static byte[] Digest(string s) => SHA256.HashData(Encoding.UTF8.GetBytes(s));

    public void Dispose() => _poll?.Dispose();
}
