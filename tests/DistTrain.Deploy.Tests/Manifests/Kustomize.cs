using System.Diagnostics;

namespace DistTrain.Deploy.Tests.Manifests;

/// <summary>
/// Renders a kustomization with the real kustomize: <c>kubectl kustomize DIR</c> (kubectl ships kustomize v5).
/// The tests need kubectl on PATH; the project's machines have it (docs/deploy.md, "Testing the manifests").
/// </summary>
public static class Kustomize
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static string Render(string directory)
    {
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "kustomize", directory }) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new InvalidOperationException("kubectl did not start"); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("rendering k8s/ needs kubectl (with its built-in kustomize) on PATH", e);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(Timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"kubectl kustomize {directory} took longer than {Timeout}");
            }
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"kubectl kustomize {directory} failed ({p.ExitCode}): {stderr.Result}");
            return stdout.Result;
        }
    }
}
