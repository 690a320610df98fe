using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>
/// Cut points that split one backward pass into segments, one per transformer block, so the gradients of the blocks
/// nearest the loss are final while earlier blocks are still in backward (data-parallel training sends them then).
/// </summary>
/// <remarks>
/// A <see cref="Transformer"/> whose <see cref="Transformer.Cuts"/> is set replaces each block's output o by a leaf
/// copy ô = o.detach() with requires_grad. <c>loss.backward()</c> then stops at the last cut; <see cref="Cut.Backward"/>
/// carries ô's gradient through o into its block and stops at the previous cut. Run in reverse order of
/// <see cref="Recorded"/>, the segments compute exactly the gradients of one backward pass: every consumer of a cut
/// was recorded after it, so its gradient is complete when the cut is reached. Only a block's residual stream crosses a
/// cut (masks carry no gradient), and blocks shared across depths (ALBERT) are never cut, since their parameters
/// are not final until the first layer's backward.
/// </remarks>
public sealed class BackwardCuts
{
    private readonly List<Cut> _recorded = [];

    /// <summary>One cut: the block that produced it and its position among the cut blocks of the model.</summary>
    public sealed record Cut(TransformerBlock Block, Tensor Output, Tensor Leaf)
    {
        /// <summary>Backward through this segment: ô's gradient into o. Nothing to do when nothing downstream used ô.</summary>
        public void Backward()
        {
            using var scope = NewDisposeScope();
            if (Leaf.grad is { } grad) Output.backward([grad]);
        }
    }

    /// <summary>Cuts in the order the forward pass made them.</summary>
    public IReadOnlyList<Cut> Recorded => _recorded;

    /// <summary>Called by <see cref="Transformer.forward"/> after each block: returns the leaf the next block reads.</summary>
    public Tensor Record(TransformerBlock block, Tensor output)
    {
        var leaf = output.detach().requires_grad_(true);   // (B, T, H)
        _recorded.Add(new Cut(block, output, leaf));
        return leaf;
    }

    /// <summary>Forgets the cuts (their tensors belong to the caller's dispose scope).</summary>
    public void Clear() => _recorded.Clear();
}
