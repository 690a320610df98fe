using DistTrain.Execution;
using System.CommandLine;
using DistTrain.Contracts.Specs;
using DistTrain.Training.Pipeline;
using TorchSharp;

namespace DistTrain.Cli.Commands;

/// <summary>
/// `disttrain export RUN/JOB/STAGE --format hf --out DIR --spec SPEC.yaml [--data-root DIR]`: writes a finished stage's
/// final model as a Hugging Face directory (config.json, model.safetensors, tokenizer files, model card). The spec is the
/// one the run used: a stage folder records weights, not the model's shape (see docs/interop.md).
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var stageDir = new Argument<DirectoryInfo>("stage") { Description = "A finished stage's folder: <run>/<job>/<stage>." };
        var format = new Option<string>("--format") { Description = "Output layout; only hf so far.", DefaultValueFactory = _ => "hf" };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder to write.", Required = true };
        var spec = new Option<FileInfo>("--spec") { Description = "The job spec the run used.", Required = true };
        var dataRoot = RunCommand.DataRootOption();
        var cmd = new Command("export", "Export a finished stage's model (Hugging Face layout).") { stageDir, format, output, spec, dataRoot };
        cmd.SetAction(parse =>
        {
            var specFile = parse.GetValue(spec)!;
            if (parse.GetValue(format) != "hf")
            {
                Console.Error.WriteLine($"export: unknown format '{parse.GetValue(format)}' (only hf)");
                return 2;
            }
            var root = RunCommand.DataRoot(parse.GetValue(dataRoot), specFile);
            var result = JobSpecs.LoadFile(specFile.FullName, root, checkpoints: HfCheckpointModels.Instance);
            if (!result.Ok)
            {
                foreach (var e in result.Errors) Console.Error.WriteLine($"{specFile.Name}: {e}");
                return 2;
            }
            var job = result.Spec!;
            var dir = parse.GetValue(stageDir)!;
            var stage = job.Stage(dir.Name);
            var jobDir = dir.Parent;
            if (stage is null || jobDir?.Parent is null || !stage.Kind.Trains())
            {
                Console.Error.WriteLine($"export: {dir.FullName} is not the folder of a training stage of {specFile.Name}");
                return 2;
            }
            try
            {
                var artifacts = new StageArtifacts(jobDir.Parent.FullName, jobDir.Name, stage.Name, root);
                using var model = ObjectiveFactory.LoadTrained(job, stage, artifacts, torch.CPU);
                HfExport.Write(model, job, stage, artifacts, parse.GetValue(output)!.FullName);
                Console.WriteLine(parse.GetValue(output)!.FullName);
                return 0;
            }
            catch (Exception e) when (e is NotSupportedException or InvalidOperationException or InvalidDataException)
            {
                Console.Error.WriteLine($"export: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }
}
