namespace DistTrain.Execution;

/// <summary>
/// Where a stage's outputs live under the run root: <c>&lt;job&gt;/&lt;stage&gt;/checkpoints/step-N/</c>,
/// <c>metrics.json</c>, labels, the tokenizer and classes it trained with, and the exported model. One layout for the
/// in-process runner and the cluster, so a stage finds its inputs the same way in both.
/// </summary>
/// <param name="DataRoot">The folder <c>data.path</c> and <c>tokenizer.path</c> are relative to on this node; null when it has none.</param>
public sealed record StageArtifacts(string RunRoot, string JobId, string Stage, string? DataRoot = null)
{
    public string Directory => Path.Combine(RunRoot, JobId, Stage);
    public string Checkpoints => Path.Combine(Directory, "checkpoints");
    public string Metrics => Path.Combine(Directory, "metrics.json");
    public string Labels => Path.Combine(Directory, "labels");
    public string SafeTensors => Path.Combine(Directory, "model.safetensors");
    public string Tokenizer => Path.Combine(Directory, "tokenizer");
    public string Classes => Path.Combine(Directory, "classes.json");

    public StageArtifacts Of(string otherStage) => this with { Stage = otherStage };
}
