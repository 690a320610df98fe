namespace DistTrain.Contracts.Specs;

/// <summary>Hard limits on a job spec, so a hostile or mistaken file cannot exhaust the parser or the cluster.</summary>
public static class SpecLimits
{
    /// <summary>Largest spec accepted, in UTF-8 bytes. Real pipelines are a few KiB.</summary>
    public const int MaxSpecBytes = 256 * 1024;

    /// <summary>
    /// Most bytes Akka's JSON serializer writes per UTF-8 byte of an accepted spec: 2 (a quote, backslash, tab or line
    /// break is escaped to two bytes; <see cref="SpecInput"/> refuses the controls that would take six). The spec text
    /// travels inside actor messages (SubmitJob, RunStage, PrepareGroup, RunInference, RunShard), so the Akka frame size in
    /// cluster-config/akka.hocon is <c>MaxWireExpansion × MaxSpecBytes + MessageEnvelopeBytes</c>; a test checks both.
    /// </summary>
    public const int MaxWireExpansion = 2;

    /// <summary>Room in an Akka frame for everything beside the spec text: type names, ids, 1,024 peer endpoints, paths.</summary>
    public const int MessageEnvelopeBytes = 256 * 1024;

    /// <summary>The Akka frame size every node must allow (<c>akka.remote.dot-netty.tcp.maximum-frame-size</c>).</summary>
    public const int MaxFrameBytes = MaxWireExpansion * MaxSpecBytes + MessageEnvelopeBytes;

    /// <summary>Most stages one job may declare.</summary>
    public const int MaxStages = 64;

    /// <summary>Deepest YAML nesting accepted; specs need 4, and the limit keeps recursion bounded.</summary>
    public const int MaxDepth = 16;

    /// <summary>Longest job or stage name.</summary>
    public const int MaxNameLength = 63;

    /// <summary>Most workers one stage may ask for.</summary>
    public const int MaxWorkers = 1024;

    /// <summary>Upper bounds on model shape, far above anything this trainer fits, to catch typos.</summary>
    public const int MaxLayers = 256;
    public const int MaxHidden = 65_536;
    public const int MaxLen = MaxSeqLen;

    /// <summary>
    /// Longest sequence a stage may read (<c>data.seq_len</c>). Absolute-position families are bounded by their
    /// <c>max_len</c> (itself at most this); xlnet and t5 have no position table and may read past <c>max_len</c>, so
    /// this is their only bound. Attention memory grows with its square, so anything above it is a typo.
    /// </summary>
    public const int MaxSeqLen = 131_072;
    public const int MaxVocab = 4_000_000;

    /// <summary>Most optimiser steps one stage may run.</summary>
    public const int MaxSteps = 100_000_000;

    /// <summary>Highest job priority; 0 is the lowest and the default.</summary>
    public const int MaxPriority = 100;
}
