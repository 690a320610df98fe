using System.Diagnostics;
using DistTrain.Cluster.Hosting;
using DistTrain.Cluster.Security;

namespace DistTrain.Deploy.Tests.Functional;

/// <summary>Real `disttrain node` processes on 127.0.0.1; every one is killed when the test disposes this.</summary>
public sealed class NodeProcesses : IDisposable
{
    private readonly ChildProcesses _children = new();
    // Every node's remoting certificate comes from this throw-away CA, as in a local cluster.
    private readonly LocalCertificateAuthority _authority = LocalCertificateAuthority.Create();

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "disttrain-deploy-" + Guid.NewGuid().ToString("N")[..8]);
    public string LogDirectory => Path.Combine(Root, "logs");

    /// <summary>
    /// Starts a coordinator-role node with the management port on and returns its management base address.
    /// <paramref name="serviceAccount"/>: a folder whose files the node sees at /var/run/secrets/kubernetes.io/serviceaccount,
    /// as in a pod (a private mount namespace with its own /run; needs root).
    /// </summary>
    public Uri StartCoordinator(string name, IReadOnlyList<string> seeds, IDictionary<string, string>? environment = null,
        string? serviceAccount = null, int? managementPort = null)
    {
        int management = managementPort ?? LoopbackPorts.Free();
        var psi = ExecutableCommand.Dll(Path.Combine(AppContext.BaseDirectory, "disttrain.dll")).StartInfo(
        [
            "node", "--roles", Roles.Coordinator, "--host", "127.0.0.1", "--port", LoopbackPorts.Free().ToString(),
            "--grpc-port", "0", "--metrics-port", "0", "--management-port", management.ToString(),
            "--run-root", Path.Combine(Root, name), "--allow-anonymous",
            .. seeds.Count > 0 ? new[] { "--seeds", string.Join(',', seeds) } : [],
        ]);
        if (serviceAccount is not null) psi = InPodMounts(psi, serviceAccount);
        foreach (var (k, v) in _authority.Issue(Path.Combine(Root, name, "tls"), name).Environment()) psi.Environment[k] = v;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        _children.Start(psi, name, Path.Combine(LogDirectory, name + ".log"));
        return new Uri($"http://127.0.0.1:{management}");
    }

    /// <summary>The same command, run by unshare in a mount namespace where /run is a fresh tmpfs holding the service-account files.</summary>
    private static ProcessStartInfo InPodMounts(ProcessStartInfo command, string serviceAccount)
    {
        const string script = """
            set -e
            mount -t tmpfs tmpfs /run
            mkdir -p /run/secrets/kubernetes.io/serviceaccount
            cp "$DISTTRAIN_TEST_SERVICE_ACCOUNT"/* /run/secrets/kubernetes.io/serviceaccount/
            exec "$@"
            """;
        var psi = new ProcessStartInfo("unshare") { UseShellExecute = false };
        foreach (var a in new[] { "--mount", "--propagation", "private", "sh", "-c", script, "sh", command.FileName }.Concat(command.ArgumentList))
            psi.ArgumentList.Add(a);
        psi.Environment["DISTTRAIN_TEST_SERVICE_ACCOUNT"] = serviceAccount;
        return psi;
    }

    /// <summary>What the children said so far (for failure messages).</summary>
    public string Logs() => string.Join("\n", Directory.Exists(LogDirectory)
        ? Directory.GetFiles(LogDirectory).Select(f => $"--- {Path.GetFileName(f)}\n{ReadShared(f)}") : []) + "\n" + string.Join("\n", _children.Exited());

    private static string ReadShared(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(s).ReadToEnd();
    }


    public void Dispose()
    {
        _children.Dispose();
        _authority.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
