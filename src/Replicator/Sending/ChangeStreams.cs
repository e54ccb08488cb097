using Geo.Contracts.Directory;
using Geo.Contracts.Replication;
using Geo.Core.Signals;
using Geo.Core.Topology;
using Geo.Replicator.Directory;
using Geo.Replicator.Wire;
using Geo.Storage;

namespace Geo.Replicator.Sending;

/// <summary>What one read of a stream produced for one peer.</summary>
/// <param name="Batch">Changes in (after_seq, last_seq], already filtered for the peer; null when nothing new.</param>
/// <param name="AtTail">True when the read reached the end of the log: everything committed before it started (or before
/// <paramref name="CompleteAsOf"/>, when given) is in the batch.</param>
/// <param name="CompleteAsOf">At the tail, the time before which every change is in the batch, when the stream knows it
/// (a shard's: when its stable position was observed); null means the read's start.</param>
internal sealed record StreamRead(ChangeBatch? Batch, bool AtTail, DateTimeOffset? CompleteAsOf = null);

/// <summary>A source of locally-originated changes, shipped to each peer from a durable per-peer checkpoint.</summary>
internal interface IChangeStream
{
    /// <summary>The stream's name on the wire: the local shard id, or <c>directory</c>.</summary>
    string Name { get; }

    /// <summary>Pulsed when a change committed (the sender reads at once); null for a stream that is only polled.</summary>
    ChangeSignal? Signal { get; }

    Task<long> GetCheckpointAsync(string peer, CancellationToken ct);

    Task SetCheckpointAsync(string peer, long seq, CancellationToken ct);

    /// <summary>
    /// The next batch after <paramref name="afterSeq"/>: at most <paramref name="limit"/> changes and, unless its first
    /// change alone is larger, at most <paramref name="maxBytes"/> of encoded changes.
    /// </summary>
    Task<StreamRead> ReadAsync(string peer, long afterSeq, int limit, int maxBytes, CancellationToken ct);

    /// <summary>Changes after <paramref name="afterSeq"/> the peer has not acknowledged (capped for the directory stream).</summary>
    Task<long> PendingAsync(long afterSeq, CancellationToken ct);
}

/// <summary>
/// One local shard's change log, origin = this region. A change is shipped to a peer only when the user's residency
/// allows the peer's region; others are skipped (the batch's last_seq still covers them). A change of a user the
/// directory does not know yet ends the batch before it: it is retried, never sent unchecked. A batch ends before the
/// change that would take it past the byte cap (the next read starts there); a first change over the cap travels alone.
/// </summary>
internal sealed class ShardChangeStream(ShardStore store, GeoTopology topology, DirectoryLink directory, ChangeSignal? signal = null) : IChangeStream
{
    public string Name => store.ShardId;

    public ChangeSignal? Signal => signal;

    public Task<long> GetCheckpointAsync(string peer, CancellationToken ct) => store.GetCheckpointAsync(peer, Name, ct);

    public Task SetCheckpointAsync(string peer, long seq, CancellationToken ct) => store.SetCheckpointAsync(new ReplicationCheckpoint(peer, Name, seq), ct);

    public Task<long> PendingAsync(long afterSeq, CancellationToken ct) => store.CountChangesAsync(afterSeq, store.RegionId, ct);

    public async Task<StreamRead> ReadAsync(string peer, long afterSeq, int limit, int maxBytes, CancellationToken ct)
    {
        var (changes, completeAsOf) = await store.ReadChangesToSendAsync(afterSeq, limit, ct);
        if (changes.Count == 0)
        {
            return new StreamRead(null, AtTail: true, completeAsOf);
        }

        var batch = new ChangeBatch { Stream = Name, AfterSeq = afterSeq, LastSeq = afterSeq };
        var bytes = 0;
        foreach (var change in changes)
        {
            var residency = await directory.ResidencyAsync(change.UserId, ct);
            if (residency is null)
            {
                return new StreamRead(batch.LastSeq > afterSeq ? batch : null, AtTail: false);
            }

            if (topology.IsAllowed(residency, peer))
            {
                var wire = ChangeMapping.ToWire(change);
                var size = wire.CalculateSize();
                if (batch.Changes.Count > 0 && bytes + size > maxBytes)
                {
                    return new StreamRead(batch, AtTail: false); // Full by bytes: the rest goes in the next batch.
                }

                bytes += size;
                batch.Changes.Add(wire);
            }

            batch.LastSeq = change.Seq;
        }

        return new StreamRead(batch, AtTail: changes.Count < limit, completeAsOf);
    }
}

/// <summary>
/// The region's directory entries that originated here, shipped to every peer (entries hold no personal data).
/// Checkpoints live in the region's first shard under stream name <c>directory</c>. Pushed by the directory's
/// WatchUserChanges (<see cref="DirectoryLink.UserChanges"/>).
/// </summary>
internal sealed class DirectoryChangeStream(DirectoryLink directory, ShardStore checkpoints) : IChangeStream
{
    public const string StreamName = "directory";

    public string Name => StreamName;

    public ChangeSignal? Signal => directory.UserChanges;

    public Task<long> GetCheckpointAsync(string peer, CancellationToken ct) => checkpoints.GetCheckpointAsync(peer, Name, ct);

    public Task SetCheckpointAsync(string peer, long seq, CancellationToken ct) => checkpoints.SetCheckpointAsync(new ReplicationCheckpoint(peer, Name, seq), ct);

    public async Task<long> PendingAsync(long afterSeq, CancellationToken ct)
        => (await ReadPageAsync(afterSeq, 1000, ct)).Changes.Count;

    public async Task<StreamRead> ReadAsync(string peer, long afterSeq, int limit, int maxBytes, CancellationToken ct)
    {
        // Directory entries are a few dozen bytes each: the count limit keeps a batch far below any byte cap.
        var page = await ReadPageAsync(afterSeq, limit, ct);
        if (page.NextAfterSeq <= afterSeq)
        {
            return new StreamRead(null, AtTail: true);
        }

        var batch = new ChangeBatch { Stream = Name, AfterSeq = afterSeq, LastSeq = page.NextAfterSeq };
        batch.Entries.Add(page.Changes.Select(ChangeMapping.ToWire));
        return new StreamRead(batch, AtTail: page.Changes.Count < limit);
    }

    private Task<ReadUserChangesResponse> ReadPageAsync(long afterSeq, int limit, CancellationToken ct)
        => directory.Grpc.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = afterSeq, Limit = limit, Origin = directory.Region, ProtocolVersion = Contracts.ProtocolVersions.Directory },
            deadline: directory.ReadDeadline(), cancellationToken: ct).ResponseAsync;
}
