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

        async Task<List<ShardChange>> ReadStableAsync(long after, long upto, int take) => ReadRows(await connection.QueryAsync<ChangeRow>(new CommandDefinition(ReadChangesSql,
            new { AfterSeq = after, Stable = upto, Origin = origin, Buckets = buckets?.ToArray(), Limit = take }, cancellationToken: ct)));
    }

    /// <summary>
    /// What <see cref="ReadChangesAsync"/> returns for this region's own entries, for the shard's senders: from a window
    /// of the log's tail that the shard's senders (one per peer) share, so each new entry is read from the database once
    /// (see RecentChanges). Short of the limit, the window is extended to a stable position (see
    /// <see cref="SendersStablePositionAsync"/>), and the read says up to when it is complete: every local change
    /// committed before <see cref="ChangesToSend.CompleteAsOf"/> is in it or before <paramref name="afterSeq"/>. Unlike a
    /// read of the log, it can return, for a few seconds, an entry that an erase from another region or a prune deleted
    /// since it was read; a sender never asks for a pruned one, and every peer refuses an erased user's changes.
    /// </summary>
    /// <param name="afterSeq">Exclusive lower bound: the position the sender reached.</param>
    /// <param name="limit">Most entries to return.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<ChangesToSend> ReadChangesToSendAsync(long afterSeq, int limit, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var changes = new List<ShardChange>();
        if (!_recent.TryTake(afterSeq, limit, changes))
        {
            // Behind the window (a backlog): from the log, complete as of the call when short of the limit.
            var started = _time.GetUtcNow();
            var fromLog = await ReadChangesAsync(afterSeq, limit, RegionId, null, ct);
            return new ChangesToSend(fromLog, fromLog.Count < limit ? started : null);
        }

        if (changes.Count == limit || await SendersStablePositionAsync(ct) is not { } stable)
        {
            return new ChangesToSend(changes, null);
        }

        // Take again even when another sender's fill reached the position meanwhile: the first take predates that fill.
        do
        {
            await _recent.ExtendAsync(stable.Position, ReadLocalRangeAsync, ct);
            var from = changes.Count > 0 ? changes[^1].Seq : afterSeq;
            if (!_recent.TryTake(from, limit, changes))
            {
                var started = _time.GetUtcNow();
                changes.AddRange(await ReadChangesAsync(from, limit - changes.Count, RegionId, null, ct)); // The window moved past it meanwhile.
                return new ChangesToSend(changes, changes.Count < limit ? started : null);
            }
        }
        while (changes.Count < limit && _recent.To < stable.Position);

        return new ChangesToSend(changes, changes.Count < limit ? stable.ObservedAt : null);
    }

    private async Task<List<ShardChange>> ReadLocalRangeAsync(long after, long upto, int take)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        return ReadRows(await connection.QueryAsync<ChangeRow>(new CommandDefinition(ReadChangesSql,
            new { AfterSeq = after, Stable = upto, Origin = RegionId, Buckets = (int[]?)null, Limit = take })));
    }

    private static List<ShardChange> ReadRows(IEnumerable<ChangeRow> rows) => [.. rows.Select(row => row.ToChange())];

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
        if (changes.Count > 0 && changes.All(c => c.Kind == ChangeKind.Document))
        {
            return await ApplyDocumentBatchAsync(changes, checkpoint, outOfOrder, ct);
        }

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
            if (Quarantine(change))
            {
                outcomes[i] = ApplyOutcome.Quarantined;
                continue;
            }

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

        await CommitApplyAsync(connection, tx, null, checkpoint, applied, ct);
        return outcomes;
    }

    /// <summary>
    /// The last writes of an apply and the commit in one round trip: the rows (when given), the checkpoint, the
    /// change-log entries of what was applied, then <c>COMMIT</c> as the batch's last statement. A statement that fails
    /// makes the server skip the rest of the batch, the <c>COMMIT</c> included, and disposing <paramref name="tx"/> rolls
    /// back; once the <c>COMMIT</c> ran, the connection is out of the transaction and the dispose sends nothing.
    /// </summary>
    private async Task CommitApplyAsync(NpgsqlConnection connection, NpgsqlTransaction tx, NpgsqlBatchCommand? rows, ReplicationCheckpoint? checkpoint,
        IReadOnlyList<ShardChange> applied, CancellationToken ct)
    {
        await using (var writes = new NpgsqlBatch(connection, tx))
        {
            if (rows is not null)
            {
                writes.BatchCommands.Add(rows);
            }

            if (checkpoint is not null)
            {
                writes.BatchCommands.Add(CheckpointCommand(checkpoint));
            }

            if (applied.Count > 0)
            {
                writes.BatchCommands.Add(AppendChangesCommand(applied));
            }

            if (writes.BatchCommands.Count > 0)
            {
                writes.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                await writes.ExecuteNonQueryAsync(ct);
                return;
            }
        }

        await tx.CommitAsync(ct);
    }

    /// <summary>Deletes change-log entries up to and including <paramref name="uptoSeq"/> (once every peer acknowledged them); returns how many.</summary>
    public async Task<int> PruneChangeLogAsync(long uptoSeq, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var count = await connection.ExecuteAsync(new CommandDefinition(PruneSql, new { UptoSeq = uptoSeq }, cancellationToken: ct));
        LogPruned(count, uptoSeq, ShardId);
        return count;
    }

    /// <summary>True (and logged) when a change's version, or its erase epoch, is beyond the clock-skew bound; otherwise the clock observes it.</summary>
    private bool Quarantine(ShardChange change)
    {
        if (_clock.IsBeyondSkew(change.Version.Hlc) || (change.EraseEpoch is { } epoch && _clock.IsBeyondSkew(epoch.Hlc)))
        {
            LogQuarantined(change.Origin, change.UserId, ShardId, change.Version.ToString());
            return true;
        }

        _clock.TryObserve(change.Version.Hlc);
        return false;
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
}
