using DistTrain.Collective.Wire;

namespace DistTrain.Collective;

/// <summary>Why a peer was declared failed.</summary>
public enum PeerFailureReason : byte
{
    /// <summary>Its connections closed or reset without a goodbye: the process died or its network went away.</summary>
    ConnectionLost = 1,
    /// <summary>It stayed silent longer than <see cref="DataPlaneOptions.IoTimeout"/> inside a collective.</summary>
    TimedOut = 2,
    /// <summary>It closed its group while others still needed it.</summary>
    Left = 3,
    /// <summary>It sent bytes that do not match the call (different length, bucket size or wire format), or a frame that failed its integrity check.</summary>
    ProtocolError = 4,
    /// <summary>It never connected while the group was forming.</summary>
    Unreachable = 5,
}

/// <summary>A collective (or group formation) failed because of one named rank; the group is unusable afterwards.</summary>
public sealed class PeerFailedException : Exception
{
    public PeerFailedException(int rank, PeerFailureReason reason, int observedBy, long generation, Exception? inner = null)
        : base($"{Describe(rank)} failed ({reason}) in generation {generation}; observed by {Describe(observedBy)}.", inner)
    {
        Rank = rank;
        Reason = reason;
        ObservedBy = observedBy;
        Generation = generation;
    }

    /// <summary>The culprit; <see cref="GroupSpec.ReducerRank"/> (-1) means the reducer.</summary>
    public int Rank { get; }
    public PeerFailureReason Reason { get; }
    /// <summary>The rank (or reducer) that raised this exception.</summary>
    public int ObservedBy { get; }
    public long Generation { get; }

    internal static string Describe(int rank) => rank == GroupSpec.ReducerRank ? "the reducer" : $"rank {rank}";
}

/// <summary>The local group was closed (disposed) while a collective was running or afterwards.</summary>
public sealed class GroupClosedException() : Exception("The data-plane group was closed.");

/// <summary>A listener refused our connection (wrong job, stale generation, a rank it does not expect, no proof of the group
/// secret), or the listener itself failed to prove the secret to us.</summary>
public sealed class HandshakeRejectedException : Exception
{
    public HandshakeRejectedException(HandshakeStatus status, int toRank, long theirGeneration, string? message = null)
        : base(message ?? $"{PeerFailedException.Describe(toRank)} rejected the connection: {status} (its generation is {theirGeneration}).")
    {
        Status = status;
        ToRank = toRank;
        TheirGeneration = theirGeneration;
    }

    public HandshakeStatus Status { get; }
    public int ToRank { get; }
    public long TheirGeneration { get; }
}
