using System.Diagnostics;

namespace DistTrain.Cli.Tests.Commands;

/// <summary>
/// examples/hf-teacher.yaml as a user runs it (real processes, --quick): examples/make-hf-teacher.sh pre-trains and
/// exports the teacher checkpoint, then `disttrain run` imports it, fine-tunes it into a classifier, labels, distils a
/// student and exports it as GPT2ForSequenceClassification (<see cref="HfTeacherExampleCheck"/>).
/// </summary>
public sealed class HfTeacherExampleTests
{
    [Fact]
    public void The_example_distils_from_an_imported_teacher_and_exports_a_student_that_imports_back()
    {
        using var dir = new TempDir();
        var root = HfTeacherExample.CopyTo(dir.Path);
        var (code, output, error) = MakeTeacher(root);
        Assert.True(code == 0, output + error);
        Assert.True(File.Exists(Path.Combine(root, "models", "gpt-teacher", "model.safetensors")), output + error);

        string spec = Path.Combine(root, "hf-teacher.yaml"), run = Path.Combine(dir.Path, "run");
        (code, output, error) = CliProcess.Run(TimeSpan.FromMinutes(6), "run", spec, "--quick", "--out", run, "--threads", "1");
        Assert.True(code == 0, output + error);
        HfTeacherExampleCheck.StudentExportMatchesTheTrainedStage(spec, root, Path.GetDirectoryName(run)!, Path.GetFileName(run));
    }

    /// <summary>Runs the shipped script under sh with DISTTRAIN pointing at the build under test.</summary>
    private static (int, string, string) MakeTeacher(string root)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(root, "make-hf-teacher.sh"), root, "--quick", "--threads", "1" }) psi.ArgumentList.Add(a);
        psi.Environment["DISTTRAIN"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "disttrain.dll")}";
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(4)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("make-hf-teacher.sh did not finish within 4 minutes");
        }
        return (p.ExitCode, output.Result, error.Result);
    }
}
