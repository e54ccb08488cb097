using Dapper;
using Geo.Core.Clock;
using Geo.Core.Versioning;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    private const string ReadChangesSql = """
        SELECT seq AS Seq, bucket AS Bucket, user_id AS UserId, kind AS Kind, collection AS Collection, key AS Key,
               counter_name AS CounterName, counter_region AS CounterRegion, body::text AS Body, deleted AS Deleted,
               incr AS Increments, decr AS Decrements, version_hlc AS VersionHlc, version_origin AS VersionOrigin,
               prev_version_hlc AS PrevHlc, prev_version_origin AS PrevOrigin, erase_hlc AS EraseHlc, erase_origin AS EraseOrigin,
               origin AS Origin, created_at AS CreatedAt, trace_parent AS TraceParent
        FROM change_log
        WHERE seq > @AfterSeq AND seq <= @Stable AND (@Origin::text IS NULL OR origin = @Origin::text) AND (@Buckets::int[] IS NULL OR bucket = ANY(@Buckets::int[]))
        ORDER BY seq
        LIMIT @Limit
        """;

    private const string InsertConflictSql = """
        INSERT INTO conflicts (bucket, user_id, collection, key, winner_version_hlc, winner_origin, loser_version_hlc, loser_origin,
                               winner_body, loser_body, winner_deleted, loser_deleted, detected_at)
        VALUES (@Bucket, @UserId, @Collection, @Key, @WinnerHlc, @WinnerOrigin, @LoserHlc, @LoserOrigin,
                @WinnerBody::jsonb, @LoserBody::jsonb, @WinnerDeleted, @LoserDeleted, @Now)
        ON CONFLICT DO NOTHING
        """;

    private const string ReadConflictsSql = """
        SELECT id AS Id, user_id AS UserId, collection AS Collection, key AS Key,
               winner_version_hlc AS WinnerHlc, winner_origin AS WinnerOrigin, loser_version_hlc AS LoserHlc, loser_origin AS LoserOrigin,
               winner_body::text AS WinnerBody, loser_body::text AS LoserBody, winner_deleted AS WinnerDeleted, loser_deleted AS LoserDeleted,
               detected_at AS DetectedAt
        FROM conflicts WHERE id > @AfterId ORDER BY id LIMIT @Limit
        """;

    private const string GetCheckpointSql = "SELECT last_seq FROM replication_checkpoints WHERE peer = @Peer AND stream = @Stream";

    // Checkpoints only move forward: a late, smaller acknowledgement must not rewind them.
    private const string SetCheckpointSql = """
        INSERT INTO replication_checkpoints AS c (peer, stream, last_seq, updated_at) VALUES (@Peer, @Stream, @LastSeq, @Now)
        ON CONFLICT (peer, stream) DO UPDATE SET last_seq = greatest(c.last_seq, excluded.last_seq), updated_at = excluded.updated_at
        """;

    // Sent in front of a statement in the same round trip (one implicit transaction): that transaction only commits without the flush.
    private const string AsyncCommitSql = "SELECT set_config('synchronous_commit', 'off', true);\n";

    private const string PruneSql = "DELETE FROM change_log WHERE seq <= @UptoSeq";

    /// <summary>How long a read at the stable position waits for the transactions running when it looked (then it returns what is stable).</summary>
    private static readonly TimeSpan StableWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Change-log entries after <paramref name="afterSeq"/> in sequence order, up to the log's stable position (see
    /// <see cref="ChangeLogWatermark"/>): a reader that continues from the last seq it got never skips an entry
    /// whose transaction commits later. At the stable position it looks for a newer one first (a few milliseconds
    /// while writers are committing).
    /// </summary>
    /// <param name="afterSeq">Exclusive lower bound, e.g. a peer's checkpoint.</param>
    /// <param name="limit">Most entries to return.</param>
    /// <param name="origin">Only entries that originated in this region (a sender passes its own region); null for all.</param>
    /// <param name="buckets">Only entries of these buckets (online moves); null for all.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<IReadOnlyList<ShardChange>> ReadChangesAsync(long afterSeq, int limit, string? origin = null, IReadOnlyCollection<int>? buckets = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var stable = Volatile.Read(ref _stablePosition);
        var changes = afterSeq < stable ? await ReadStableAsync(afterSeq, stable, limit) : [];
        if (changes.Count < limit && await SharedStablePositionAsync(ct) is { } position && position > stable)
        {
            // Short of the limit: look for a newer stable position (it covers everything committed before this call).
            var from = changes.Count > 0 ? changes[^1].Seq : Math.Max(afterSeq, stable);
            stable = RaiseStablePosition(position);
            changes.AddRange(await ReadStableAsync(from, stable, limit - changes.Count));
        }

        return changes;

        async Task<List<ShardChange>> ReadStableAsync(long after, long upto, int take) =>
        [
            .. (await connection.QueryAsync<ChangeRow>(new CommandDefinition(ReadChangesSql,
                new { AfterSeq = after, Stable = upto, Origin = origin, Buckets = buckets?.ToArray(), Limit = take }, cancellationToken: ct))).Select(row => row.ToChange()),
        ];
    }

    /// <summary>
    /// The change log's stable position now: every entry up to it has committed (or aborted). Copies that pair a
    /// snapshot with a log position take it before opening the snapshot, so everything up to it is in the snapshot.
    /// Null when a transaction that was running did not end within <paramref name="maxWait"/>.
    /// </summary>
    public async Task<long?> StableChangePositionAsync(TimeSpan maxWait, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await ChangeLogWatermark.StablePositionAsync(connection, maxWait, ct) is { } position ? RaiseStablePosition(position) : null;
    }

    private long RaiseStablePosition(long position)
    {
        while (true)
        {
            var current = Volatile.Read(ref _stablePosition);
            if (position <= current || Interlocked.CompareExchange(ref _stablePosition, position, current) == current)
            {
                return Math.Max(position, current);
            }
        }
    }

    /// <summary>
    /// Applies changes from another region in one transaction (and advances <paramref name="checkpoint"/> in it, when
    /// given). Documents apply only when newer (last writer wins); counter components merge by max; an erasure applies
    /// once, and afterwards every change of the erased user is skipped, whatever its version. Concurrent values that lose are written to the conflict log. Applied
    /// changes are appended to the change log with their remote origin, so they are never shipped again but do
    /// travel with online moves. Idempotent: a second apply of the same changes changes nothing.
    /// </summary>
    /// <param name="changes">The changes, in the order to apply them.</param>
    /// <param name="checkpoint">Advanced in the same transaction, when given.</param>
    /// <param name="ct">Cancellation.</param>
    /// <param name="outOfOrder">
    /// True when the changes do not come in their origin's stream order (anti-entropy's rows: a row is the peer's current
    /// value, and the values it replaced may never arrive): conflict logging then does not count on an earlier value of
    /// the incoming change's region having met the stored one first (see <see cref="IsConcurrent"/>).
    /// </param>
    public async Task<IReadOnlyList<ApplyOutcome>> ApplyRemoteAsync(IReadOnlyList<ShardChange> changes, ReplicationCheckpoint? checkpoint = null, CancellationToken ct = default,
        bool outOfOrder = false)
    {
        ArgumentNullException.ThrowIfNull(changes);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockUsersAsync(connection, tx, [.. changes.Select(c => c.UserId)], ct);
        var outcomes = new ApplyOutcome[changes.Count];
        var applied = new List<ShardChange>();
        var run = new List<int>();
        async Task FlushRunAsync()
        {
            if (run.Count > 0)
            {
                await ApplyDocumentRunAsync(connection, tx, [.. run.Select(i => changes[i])], outOfOrder, (position, done) =>
                {
                    outcomes[run[position]] = done ? ApplyOutcome.Applied : ApplyOutcome.Skipped;
                    if (done)
                    {
                        applied.Add(changes[run[position]]);
                    }
                }, ct);
                run.Clear();
            }
        }

        for (var i = 0; i < changes.Count; i++)
        {
            var change = changes[i];
            if (_clock.IsBeyondSkew(change.Version.Hlc) || (change.EraseEpoch is { } epoch && _clock.IsBeyondSkew(epoch.Hlc)))
            {
                LogQuarantined(change.Origin, change.UserId, ShardId, change.Version.ToString());
                outcomes[i] = ApplyOutcome.Quarantined;
                continue;
            }

            _clock.TryObserve(change.Version.Hlc);
            if (change.Kind == ChangeKind.Document)
            {
                run.Add(i); // Consecutive documents are applied together; see ApplyDocumentRunAsync.
                continue;
            }

            await FlushRunAsync();
            var done = change.Kind switch
            {
                ChangeKind.Counter => await ApplyCounterAsync(connection, tx, change, ct),
                ChangeKind.UserErase => await ApplyRemoteEraseAsync(connection, tx, change.UserId, change.Version, ct),
                _ => throw new ArgumentOutOfRangeException(nameof(changes), change.Kind, "unknown change kind"),
            };
            outcomes[i] = done ? ApplyOutcome.Applied : ApplyOutcome.Skipped;
            if (done)
            {
                applied.Add(change);
            }
        }

        await FlushRunAsync();

        // An erase in this batch deleted the user's change-log entries: do not append the batch's earlier changes of that user again.
        var erasedHere = applied.Where(c => c.Kind == ChangeKind.UserErase).Select(c => c.UserId).ToHashSet(StringComparer.Ordinal);
        if (erasedHere.Count > 0)
        {
            applied.RemoveAll(c => c.Kind != ChangeKind.UserErase && erasedHere.Contains(c.UserId));
        }

        if (checkpoint is not null)
        {
            await connection.ExecuteAsync(new CommandDefinition(SetCheckpointSql, CheckpointArgs(checkpoint), tx, cancellationToken: ct));
        }

        await AppendChangesAsync(connection, tx, applied, ct);
        await tx.CommitAsync(ct);
        return outcomes;
    }

    /// <summary>The last sequence recorded for (<paramref name="peer"/>, <paramref name="stream"/>); 0 when none.</summary>
    public async Task<long> GetCheckpointAsync(string peer, string stream, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(GetCheckpointSql, new { Peer = peer, Stream = stream }, cancellationToken: ct)) ?? 0;
    }

    /// <summary>
    /// Records a sender's checkpoint; never moves an existing one backwards. It commits without waiting for the WAL to
    /// reach disk (<c>synchronous_commit</c> off for this one transaction): a checkpoint that a database crash loses is
    /// an older one, from which the sender sends again, and the receiver skips what it applied already (applying is
    /// idempotent). Nothing that must hold after a crash follows from it before a durable commit: the next durable commit
    /// on the shard (a write, a prune that read this checkpoint) flushes the log up to and past it.
    /// </summary>
    public async Task SetCheckpointAsync(ReplicationCheckpoint checkpoint, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(AsyncCommitSql + SetCheckpointSql, CheckpointArgs(checkpoint), cancellationToken: ct));
    }

    /// <summary>Deletes change-log entries up to and including <paramref name="uptoSeq"/> (once every peer acknowledged them); returns how many.</summary>
    public async Task<int> PruneChangeLogAsync(long uptoSeq, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var count = await connection.ExecuteAsync(new CommandDefinition(PruneSql, new { UptoSeq = uptoSeq }, cancellationToken: ct));
        LogPruned(count, uptoSeq, ShardId);
        return count;
    }

    /// <summary>Conflict-log entries with id greater than <paramref name="afterId"/>, oldest first.</summary>
    public async Task<IReadOnlyList<ConflictRecord>> ReadConflictsAsync(long afterId = 0, int limit = 100, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<ConflictRow>(new CommandDefinition(ReadConflictsSql, new { AfterId = afterId, Limit = limit }, cancellationToken: ct));
        return [.. rows.Select(row => row.ToRecord())];
    }

    private object CheckpointArgs(ReplicationCheckpoint checkpoint) =>
        new { checkpoint.Peer, checkpoint.Stream, checkpoint.LastSeq, Now = _time.GetUtcNow() };

    /// <summary>
    /// Whether <paramref name="other"/> is concurrent with <paramref name="newer"/>, whose writer replaced
    /// <paramref name="newerReplaced"/>: false when both come from one region (its writes to a key are serialized) or
    /// the writer replaced <paramref name="other"/> itself, something older, or a later value of <paramref name="other"/>'s
    /// region or of its own (those met <paramref name="other"/> first, in stream order, and were judged there). When the
    /// writer replaced a newer value of a third region, one version of history cannot tell whether that value had seen
    /// <paramref name="other"/>: it counts as concurrent, so a lost write is always logged (at the price of a rare entry
    /// for a write that was in fact seen). The definition the tests check is in docs/decisions.md.
    /// When <paramref name="newer"/> arrived <paramref name="outOfOrder"/> (an anti-entropy row), a later value of its own
    /// region is no proof either: that value may never reach this replica (the row is the peer's current value, not
    /// its history), so it never meets <paramref name="other"/> here, and at its own region <paramref name="other"/>
    /// may have arrived only after it was replaced. Such an overwrite is logged.
    /// </summary>
    private static bool IsConcurrent(DataVersion other, DataVersion newer, DataVersion? newerReplaced, bool outOfOrder = false) =>
        other.Origin != newer.Origin
        && (newerReplaced is not { } replaced || replaced < other
            || (replaced != other && replaced.Origin != other.Origin && (outOfOrder || replaced.Origin != newer.Origin)));

    private async Task<bool> ApplyCounterAsync(NpgsqlConnection connection, NpgsqlTransaction tx, ShardChange change, CancellationToken ct)
    {
        var name = change.CounterName ?? throw new ArgumentException("A counter change needs CounterName.", nameof(change));
        var region = change.CounterRegion ?? throw new ArgumentException("A counter change needs CounterRegion.", nameof(change));
        if (await EraseMarkerAsync(connection, tx, change.UserId, ct) != DataVersion.None)
        {
            return false; // The user was erased: an erase is final, whatever the component's version.
        }

        if (change.EraseEpoch is { } epoch)
        {
            // A sender of an older release counted on after an erase this shard has not seen: apply the erase, refuse the count.
            await ApplyEraseAsync(connection, tx, change.UserId, epoch, ct);
            return false;
        }

        while (true)
        {
            var local = await LockComponentAsync(connection, tx, change.UserId, name, region, ct);
            if (local is not null && change.Increments <= local.Increments && change.Decrements <= local.Decrements)
            {
                return false;
            }

            var merged = new CounterComponent(
                Math.Max(change.Increments, local?.Increments ?? 0),
                Math.Max(change.Decrements, local?.Decrements ?? 0),
                local is null ? change.Version.Hlc.Value : DataVersion.Max(local.Version, change.Version).Hlc.Value,
                local is null ? change.Version.Origin : DataVersion.Max(local.Version, change.Version).Origin);
            if (await WriteComponentAsync(connection, tx, change.UserId, name, region, merged, insert: local is null, ct))
            {
                return true;
            }
        }
    }

    private async Task<bool> ApplyRemoteEraseAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, DataVersion erase, CancellationToken ct)
    {
        if (await EraseMarkerAsync(connection, tx, userId, ct) != DataVersion.None)
        {
            return false; // Erased already (by this stream, the directory's erase worker or anti-entropy).
        }

        await ApplyEraseAsync(connection, tx, userId, erase, ct);
        LogUserErased(userId, ShardId, erase.ToString());
        return true;
    }

    private sealed record ChangeRow(long Seq, int Bucket, string UserId, string Kind, string? Collection, string? Key, string? CounterName, string? CounterRegion,
        string? Body, bool Deleted, long? Increments, long? Decrements, long VersionHlc, string VersionOrigin, long? PrevHlc, string? PrevOrigin,
        long? EraseHlc, string? EraseOrigin, string Origin, DateTime CreatedAt, string? TraceParent)
    {
        public ShardChange ToChange() => new()
        {
            Seq = Seq,
            Kind = ChangeKinds.Parse(Kind),
            Bucket = Bucket,
            UserId = UserId,
            Collection = Collection,
            Key = Key,
            CounterName = CounterName,
            CounterRegion = CounterRegion,
            Body = Body,
            Deleted = Deleted,
            Increments = Increments ?? 0,
            Decrements = Decrements ?? 0,
            Version = new DataVersion(new HlcTimestamp(VersionHlc), VersionOrigin),
            PreviousVersion = PrevHlc is { } prev ? new DataVersion(new HlcTimestamp(prev), PrevOrigin ?? string.Empty) : null,
            EraseEpoch = EraseHlc is { } erase ? new DataVersion(new HlcTimestamp(erase), EraseOrigin ?? string.Empty) : null,
            Origin = Origin,
            CreatedAt = new DateTimeOffset(DateTime.SpecifyKind(CreatedAt, DateTimeKind.Utc)),
            TraceParent = TraceParent,
        };
    }

    private sealed record ConflictRow(long Id, string UserId, string Collection, string Key, long WinnerHlc, string WinnerOrigin, long LoserHlc, string LoserOrigin,
        string? WinnerBody, string? LoserBody, bool WinnerDeleted, bool LoserDeleted, DateTime DetectedAt)
    {
        public ConflictRecord ToRecord() => new(Id, UserId, Collection, Key,
            new DataVersion(new HlcTimestamp(WinnerHlc), WinnerOrigin), WinnerBody, WinnerDeleted,
            new DataVersion(new HlcTimestamp(LoserHlc), LoserOrigin), LoserBody, LoserDeleted,
            new DateTimeOffset(DateTime.SpecifyKind(DetectedAt, DateTimeKind.Utc)));
    }
}

/// <summary>A conflict-log entry: two concurrent values of one document and which won.</summary>
public sealed record ConflictRecord(long Id, string UserId, string Collection, string Key,
    DataVersion Winner, string? WinnerBody, bool WinnerDeleted,
    DataVersion Loser, string? LoserBody, bool LoserDeleted,
    DateTimeOffset DetectedAt);
