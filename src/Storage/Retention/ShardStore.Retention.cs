using Dapper;
using Geo.Core.Clock;

namespace Geo.Storage;

// Retention statements (docs/operations.md "Retention"). Each DELETE removes at most @Limit rows chosen by a keyed or
// indexed sub-select, so one statement is short whatever the backlog.
public sealed partial class ShardStore
{
    private const string PurgeIdempotencyBatchSql = """
        DELETE FROM idempotency WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency WHERE expires_at <= @Now LIMIT @Limit)) AND expires_at <= @Now
        """;

    private const string PurgeConflictsBatchSql = """
        DELETE FROM conflicts WHERE id = ANY(ARRAY(SELECT id FROM conflicts WHERE detected_at < @Before ORDER BY detected_at LIMIT @Limit))
        """;

    // Deletes old tombstones and raises each bucket's floor to the largest version collected, in one statement (one
    // transaction): a replicated apply that locks the row first keeps it (the outer WHERE is checked again on the row it
    // changed), one that comes after sees the floor.
    private const string CollectTombstonesSql = """
        WITH gone AS (
            DELETE FROM documents
            WHERE ctid = ANY(ARRAY(SELECT ctid FROM documents WHERE deleted AND version_hlc < @Cutoff LIMIT @Limit)) AND deleted AND version_hlc < @Cutoff
            RETURNING bucket, version_hlc, version_origin),
        top AS (
            SELECT DISTINCT ON (bucket) bucket, version_hlc, version_origin FROM gone ORDER BY bucket, version_hlc DESC, version_origin DESC),
        raised AS (
            INSERT INTO tombstone_floors AS f (bucket, floor_hlc, floor_origin, updated_at)
            SELECT bucket, version_hlc, version_origin, @Now FROM top
            ON CONFLICT (bucket) DO UPDATE SET floor_hlc = excluded.floor_hlc, floor_origin = excluded.floor_origin, updated_at = excluded.updated_at
            WHERE (f.floor_hlc, f.floor_origin) < (excluded.floor_hlc, excluded.floor_origin))
        SELECT count(*) FROM gone
        """;

    // The oldest tombstone this region wrote whose change-log entry is still there: some replica of its user has not
    // acknowledged it yet (the log is pruned per replica set once every replica acknowledged, ChangeLogPruner).
    private const string UnacknowledgedTombstoneSql = """
        SELECT min(version_hlc) FROM change_log WHERE origin = @Region AND kind = 'doc' AND deleted
        """;

    private const string TombstoneFloorsSql = """
        SELECT bucket AS Bucket, floor_hlc AS VersionHlc, floor_origin AS VersionOrigin FROM tombstone_floors WHERE bucket = ANY(@Buckets)
        """;

    private const string PruneBatchSql = """
        DELETE FROM change_log WHERE seq = ANY(ARRAY(SELECT seq FROM change_log WHERE seq <= @UptoSeq ORDER BY seq LIMIT @Limit))
        """;

    private const string PruneCandidatesSql = """
        SELECT seq AS Seq, user_id AS UserId FROM change_log WHERE seq > @AfterSeq AND seq <= @UptoSeq ORDER BY seq LIMIT @Limit
        """;

    private const string DeleteChangesSql = "DELETE FROM change_log WHERE seq = ANY(@Seqs)";

    private const string RetainedSizesSql = """
        SELECT (SELECT count(*) FROM idempotency) AS Idempotency, (SELECT count(*) FROM conflicts) AS Conflicts,
               (SELECT count(*) FROM documents WHERE deleted) AS Tombstones, (SELECT count(*) FROM change_log) AS ChangeLog,
               (SELECT count(*) FROM documents) AS Documents
        """;

    /// <summary>Deletes at most <paramref name="limit"/> expired idempotency records; returns how many.</summary>
    public Task<int> PurgeExpiredIdempotencyAsync(int limit, CancellationToken ct = default) =>
        ExecuteAsync(PurgeIdempotencyBatchSql, new { Now = _time.GetUtcNow(), Limit = limit }, ct);

    /// <summary>Deletes at most <paramref name="limit"/> conflict-log entries recorded before <paramref name="before"/>; returns how many.</summary>
    public Task<int> PurgeConflictsAsync(DateTimeOffset before, int limit, CancellationToken ct = default) =>
        ExecuteAsync(PurgeConflictsBatchSql, new { Before = before, Limit = limit }, ct);

    /// <summary>
    /// Deletes at most <paramref name="limit"/> tombstones whose version's clock is below <paramref name="cutoff"/> and
    /// raises their buckets' collection floors (see <see cref="TombstoneCutoffAsync"/> for a safe cutoff); returns how many.
    /// </summary>
    public async Task<int> CollectTombstonesAsync(HlcTimestamp cutoff, int limit, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(CollectTombstonesSql,
            new { Cutoff = cutoff.Value, Limit = limit, Now = _time.GetUtcNow() }, cancellationToken: ct));
    }

    /// <summary>
    /// The clock reading below which tombstones may be collected now: older than <paramref name="grace"/>, and older than
    /// every tombstone of this region that some replica has not acknowledged yet (its change-log entry is still kept).
    /// Tombstones applied from another region are that region's to deliver: its log keeps them until every replica
    /// acknowledged; here the grace period covers that delivery.
    /// </summary>
    public async Task<HlcTimestamp> TombstoneCutoffAsync(TimeSpan grace, CancellationToken ct = default)
    {
        var byAge = HlcTimestamp.From(Math.Max(0, (_time.GetUtcNow() - grace).ToUnixTimeMilliseconds()), 0);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var unacknowledged = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(UnacknowledgedTombstoneSql, new { Region = RegionId }, cancellationToken: ct));
        return unacknowledged is { } held && held < byAge.Value ? new HlcTimestamp(held) : byAge;
    }

    /// <summary>Deletes at most <paramref name="limit"/> change-log entries up to <paramref name="uptoSeq"/> (every peer acknowledged them); returns how many.</summary>
    public Task<int> PruneChangeLogAsync(long uptoSeq, int limit, CancellationToken ct = default) =>
        ExecuteAsync(PruneBatchSql, new { UptoSeq = uptoSeq, Limit = limit }, ct);

    /// <summary>Change-log entries in (<paramref name="afterSeq"/>, <paramref name="uptoSeq"/>], oldest first: the pruner's candidates.</summary>
    public async Task<IReadOnlyList<(long Seq, string UserId)>> ReadPruneCandidatesAsync(long afterSeq, long uptoSeq, int limit, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return [.. await connection.QueryAsync<(long Seq, string UserId)>(new CommandDefinition(PruneCandidatesSql,
            new { AfterSeq = afterSeq, UptoSeq = uptoSeq, Limit = limit }, cancellationToken: ct))];
    }

    /// <summary>Deletes the given change-log entries (each acknowledged by every replica of its user); returns how many.</summary>
    public Task<int> DeleteChangesAsync(IReadOnlyCollection<long> seqs, CancellationToken ct = default) =>
        seqs.Count == 0 ? Task.FromResult(0) : ExecuteAsync(DeleteChangesSql, new { Seqs = seqs.ToArray() }, ct);

    /// <summary>Row counts of the tables retention bounds (for the job's gauges and the bounded-growth run).</summary>
    public async Task<RetainedSizes> RetainedSizesAsync(CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.QuerySingleAsync<RetainedSizes>(new CommandDefinition(RetainedSizesSql, cancellationToken: ct));
    }

    private async Task<int> ExecuteAsync(string sql, object args, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(sql, args, cancellationToken: ct));
    }

    private sealed record FloorRow(int Bucket, long VersionHlc, string VersionOrigin);
}

/// <summary>Row counts of one shard's tables that retention keeps bounded.</summary>
public sealed record RetainedSizes(long Idempotency, long Conflicts, long Tombstones, long ChangeLog, long Documents);
