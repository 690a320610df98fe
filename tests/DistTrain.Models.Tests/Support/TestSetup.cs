using TorchSharp;
using static TorchSharp.torch;

// Torch's RNG and thread pool are process-global: parallel test classes would interleave seeds and fight over 2 cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace DistTrain.Models.Tests;

/// <summary>Tiny configs and shared setup so every test is fast and seeded.</summary>
internal static class Tiny
{
    static Tiny() => torch.set_num_threads(1);

    /// <summary>Seeds torch and pins one thread; call at the start of every test.</summary>
    public static void Seed(int seed = 1234)
    {
        torch.set_num_threads(1);
        torch.manual_seed(seed);
    }

    public const int Vocab = 32;

    public static BertConfig Bert(double dropout = 0.0) => new()
    {
        VocabSize = Vocab, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, MaxPositions = 16,
        Dropout = dropout, AttentionDropout = dropout,
    };

    public static RobertaConfig Roberta() => new()
    {
        VocabSize = Vocab, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, MaxPositions = 16,
        Dropout = 0, AttentionDropout = 0,
    };

    public static AlbertConfig Albert(int layers = 3) => new()
    {
        VocabSize = Vocab, EmbeddingSize = 16, HiddenSize = 32, Layers = layers, Heads = 2, IntermediateSize = 64, MaxPositions = 16,
    };

    public static ElectraConfig Electra() => new()
    {
        VocabSize = Vocab, EmbeddingSize = 16, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, MaxPositions = 16,
        GeneratorHiddenSize = 16, GeneratorHeads = 1, GeneratorIntermediateSize = 32, Dropout = 0, AttentionDropout = 0,
    };

    public static GptConfig Gpt(double dropout = 0.0) => new()
    {
        VocabSize = Vocab, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, MaxPositions = 16,
        Dropout = dropout, AttentionDropout = dropout,
    };

    /// <summary>Random ids in [4, Vocab) (0..3 are reserved for pad/CLS/SEP/MASK in these tests): (B, T).</summary>
    public static Tensor Ids(long b, long t) => randint(4, Vocab, [b, t], ScalarType.Int64);

    public const long Mask = 3;
}
