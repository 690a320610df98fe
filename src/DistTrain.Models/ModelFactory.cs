using static TorchSharp.torch;

namespace DistTrain.Models;

/// <summary>A pre-training model whose encoder or decoder is the part fine-tuning keeps.</summary>
public interface IHasBackbone
{
    /// <summary>The transformer core to load under a head (its state dict is the pre-trained checkpoint).</summary>
    Transformer Backbone { get; }
}

/// <summary>Builds models from config records and counts their parameters.</summary>
public static class ModelFactory
{
    /// <summary>
    /// The pre-training module for a config: <see cref="EncoderForPreTraining"/> for BERT/RoBERTa/ALBERT,
    /// <see cref="ElectraForPreTraining"/>, <see cref="GptLanguageModel"/>, <see cref="XLNetLanguageModel"/>,
    /// <see cref="T5Model"/>. Validates first.
    /// </summary>
    public static nn.Module Create(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return config switch
        {
            BertConfig c => new EncoderForPreTraining(c, c.Pair),
            RobertaConfig c => new EncoderForPreTraining(c, PairObjective.None),
            AlbertConfig c => new EncoderForPreTraining(c, c.Pair),
            ElectraConfig c => new ElectraForPreTraining(c),
            GptConfig c => new GptLanguageModel(c),
            XLNetConfig c => new XLNetLanguageModel(c),
            T5Config c => new T5Model(c),
            _ => throw new ArgumentException($"no model for config type {config.GetType().Name}.", nameof(config)),
        };
    }

    /// <summary>
    /// A fresh backbone of the shape the pre-training model for this config fine-tunes (ELECTRA: the discriminator),
    /// ready for <c>load_state_dict</c> of <see cref="IHasBackbone.Backbone"/>'s weights.
    /// </summary>
    public static Backbone CreateBackbone(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config switch
        {
            XLNetConfig c => new XLNetEncoder(c),
            T5Config => throw new ArgumentException("T5 fine-tunes as a whole encoder-decoder (T5TextClassifier), not as a backbone under a head.", nameof(config)),
            _ => new Transformer(config),
        };
    }

    /// <summary>Copies a pre-trained backbone's weights into another backbone of the same config (strict: every key must match).</summary>
    public static void LoadBackbone(Backbone target, Backbone pretrained)
    {
        using var _ = no_grad();
        target.load_state_dict(pretrained.state_dict(), strict: true);
    }

    /// <summary>Number of distinct parameter elements: a tied or shared Parameter counts once.</summary>
    /// <remarks>
    /// Identity is the storage address (plus offset and shape), not the managed object: TorchSharp hands out a new
    /// wrapper, with a new handle, each time a module's weight property is read.
    /// </remarks>
    public static long ParameterCount(nn.Module module)
    {
        var seen = new HashSet<(IntPtr, long, string)>();
        long total = 0;
        foreach (var p in module.parameters())
            if (seen.Add((StorageAddress(p), p.storage_offset(), string.Join("x", p.shape)))) total += p.numel();
        return total;
    }

    /// <summary>Address of a tensor's storage, equal for every view or wrapper of the same memory (falls back to the handle for other dtypes).</summary>
    public static IntPtr StorageAddress(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => t.storage<float>().data_ptr(),
        ScalarType.Float64 => t.storage<double>().data_ptr(),
        _ => t.Handle,
    };
}
