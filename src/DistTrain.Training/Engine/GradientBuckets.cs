using DistTrain.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Transformer = DistTrain.Models.Transformer;

namespace DistTrain.Training.Engine;

/// <summary>
/// The order gradients are laid out in and sent in, as DDP and Horovod do it: buckets of whole transformer blocks,
/// the last block first (backward finishes it first), closed once they hold <c>capBytes</c>; then one final bucket
/// with everything else (embeddings, heads, tied weights) and the trailer. A cap of 0, or a model without unshared
/// <see cref="Transformer"/> blocks, gives the final bucket alone: one all-reduce after backward.
/// </summary>
public sealed class GradientBuckets
{
    /// <summary>Parameters [First, End) of <see cref="Parameters"/>; final once every block in Blocks is (never before backward ends when Blocks is empty).</summary>
    public sealed record Bucket(int First, int End, IReadOnlyList<TransformerBlock> Blocks);

    private GradientBuckets(Parameter[] parameters, IReadOnlyList<Bucket> buckets, IReadOnlyList<Transformer> cut)
    {
        Parameters = parameters;
        Buckets = buckets;
        CutTransformers = cut;
    }

    /// <summary>Every trainable parameter once, in bucket order.</summary>
    public Parameter[] Parameters { get; }

    /// <summary>In sending order; the last is the final bucket.</summary>
    public IReadOnlyList<Bucket> Buckets { get; }

    /// <summary>The transformers whose blocks are cut during the overlapped backward.</summary>
    public IReadOnlyList<Transformer> CutTransformers { get; }

    /// <summary>True when more than one bucket exists, i.e. some gradients can travel while backward runs.</summary>
    public bool Overlaps => Buckets.Count > 1;

    /// <summary>Plans the buckets of model's trainable parameters (in registration order, each once).</summary>
    public static GradientBuckets Plan(nn.Module model, Parameter[] trainable, long capBytes)
    {
        var order = trainable.Select((p, i) => (p.Handle, i)).ToDictionary(x => x.Handle, x => x.i);
        var owned = new HashSet<IntPtr>();
        var buckets = new List<Bucket>();
        var parameters = new List<Parameter>();
        var cut = new List<Transformer>();
        if (capBytes > 0)
        {
            // Only transformers that train: cutting a frozen one (a teacher, a reference policy) would give its outputs a gradient.
            foreach (var t in model.modules().OfType<Transformer>().Where(t => !t.Config.ShareLayers))
                if (t.Blocks.Any(b => b.parameters().Any(p => order.ContainsKey(p.Handle)))) cut.Add(t);
            var blocks = new List<TransformerBlock>();
            long bytes = 0;
            int first = 0;
            foreach (var block in cut.SelectMany(t => t.Blocks).Reverse())
            {
                foreach (var p in block.parameters().Where(p => order.ContainsKey(p.Handle) && owned.Add(p.Handle)).OrderBy(p => order[p.Handle]))
                {
                    parameters.Add(trainable[order[p.Handle]]);
                    bytes += p.numel() * sizeof(float);
                }
                blocks.Add(block);
                if (bytes >= capBytes)
                {
                    buckets.Add(new Bucket(first, parameters.Count, blocks.ToArray()));
                    (blocks, bytes, first) = ([], 0, parameters.Count);
                }
            }
            if (blocks.Count > 0) buckets.Add(new Bucket(first, parameters.Count, blocks.ToArray()));
        }
        int rest = parameters.Count;
        parameters.AddRange(trainable.Where(p => !owned.Contains(p.Handle)));
        buckets.Add(new Bucket(rest, parameters.Count, []));
        if (buckets.Count == 1) cut.Clear();
        return new GradientBuckets(parameters.ToArray(), buckets, cut);
    }
}
