namespace DistTrain.Models;

/// <summary>
/// A task head on a backbone that may come from pre-training: sequence and token classifiers, reward models.
/// Fine-tuning loads the pre-trained weights into <see cref="Backbone"/>; a linear probe trains the head alone.
/// </summary>
public interface IHeadOnBackbone
{
    /// <summary>The shared transformer (embeddings and blocks) under the head.</summary>
    Backbone Backbone { get; }

    /// <summary>Fixes the backbone's weights (requires_grad = false), so only the head trains.</summary>
    void FreezeBackbone()
    {
        foreach (var p in Backbone.parameters()) p.requires_grad = false;
    }
}
