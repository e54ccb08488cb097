using Geo.Core.Versioning;

namespace Geo.Storage;

/// <summary>What a change-log entry records.</summary>
public enum ChangeKind
{
    /// <summary>A document put or tombstone.</summary>
    Document,

    /// <summary>The current totals of one region's component of a counter.</summary>
    Counter,

    /// <summary>A user erasure.</summary>
    UserErase,
}

/// <summary>
/// One change-log entry: read from a shard with <see cref="ShardStore.ReadChangesAsync"/>, shipped to peers, applied
/// there with <see cref="ShardStore.ApplyRemoteAsync"/>. Counter entries carry the component's totals (state, not a
/// delta), so applying one twice or out of order is harmless.
/// </summary>
public sealed record ShardChange
{
    /// <summary>Position in the source shard's change log (0 for a change not read from a log).</summary>
    public long Seq { get; init; }

    public required ChangeKind Kind { get; init; }

    public required int Bucket { get; init; }

    public required string UserId { get; init; }

    /// <summary>Document collection (documents only).</summary>
    public string? Collection { get; init; }

    /// <summary>Document key (documents only).</summary>
    public string? Key { get; init; }

    /// <summary>Document body as JSON text; null for a tombstone.</summary>
    public string? Body { get; init; }

    /// <summary>True for a document tombstone.</summary>
    public bool Deleted { get; init; }

    /// <summary>Counter name (counters only).</summary>
    public string? CounterName { get; init; }

    /// <summary>The region whose component this is (counters only).</summary>
    public string? CounterRegion { get; init; }

    /// <summary>Total increments of the component (counters only).</summary>
    public long Increments { get; init; }

    /// <summary>Total decrements of the component, as a positive number (counters only).</summary>
    public long Decrements { get; init; }

    /// <summary>The version of the value (for an erase: the erase version).</summary>
    public required DataVersion Version { get; init; }

    /// <summary>Documents: the version the writer replaced; tells a fast-forward from a concurrent overwrite.</summary>
    public DataVersion? PreviousVersion { get; init; }

    /// <summary>Counters: the user's erase version the component counts from (null: never erased).</summary>
    public DataVersion? EraseEpoch { get; init; }

    /// <summary>The region where the change originated; senders ship only their own region's changes.</summary>
    public required string Origin { get; init; }

    /// <summary>When the entry was appended to the source log.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>W3C <c>traceparent</c> of the request that wrote the change in its origin region; null outside a trace.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>What <see cref="ShardStore.ApplyRemoteAsync"/> did with one change.</summary>
public enum ApplyOutcome
{
    /// <summary>The change was newer and is now stored.</summary>
    Applied,

    /// <summary>The change was not newer than what is stored (a duplicate, stale, or erased value).</summary>
    Skipped,

    /// <summary>The change's clock is beyond the skew bound; nothing was stored. Do not acknowledge it.</summary>
    Quarantined,
}

/// <summary>A durable replication position: <paramref name="LastSeq"/> of <paramref name="Stream"/> with <paramref name="Peer"/>.</summary>
public sealed record ReplicationCheckpoint(string Peer, string Stream, long LastSeq);

/// <summary>A sender's read of the local log (<see cref="ShardStore.ReadChangesToSendAsync"/>).</summary>
/// <param name="Changes">Local entries after the sender's position, in seq order.</param>
/// <param name="CompleteAsOf">Every local change committed before this time is in <paramref name="Changes"/> or before the
/// sender's position; null when the read stopped at its limit or found no stable position.</param>
public sealed record ChangesToSend(IReadOnlyList<ShardChange> Changes, DateTimeOffset? CompleteAsOf);

internal static class ChangeKinds
{
    public static string ToText(ChangeKind kind) => kind switch
    {
        ChangeKind.Document => "doc",
        ChangeKind.Counter => "counter",
        ChangeKind.UserErase => "user_erase",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static ChangeKind Parse(string text) => text switch
    {
        "doc" => ChangeKind.Document,
        "counter" => ChangeKind.Counter,
        "user_erase" => ChangeKind.UserErase,
        _ => throw new InvalidOperationException($"Unknown change kind '{text}' in change_log."),
    };
}
