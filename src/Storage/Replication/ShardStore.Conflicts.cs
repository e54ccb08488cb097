using Dapper;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;

namespace Geo.Storage;

// The conflict log: concurrent values of a document that lost to the one stored (docs/decisions.md has the definition).
public sealed partial class ShardStore
{
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

    /// <summary>Conflict-log entries with id greater than <paramref name="afterId"/>, oldest first.</summary>
    public async Task<IReadOnlyList<ConflictRecord>> ReadConflictsAsync(long afterId = 0, int limit = 100, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<ConflictRow>(new CommandDefinition(ReadConflictsSql, new { AfterId = afterId, Limit = limit }, cancellationToken: ct));
        return [.. rows.Select(row => row.ToRecord())];
    }

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

    private object ConflictArgs(ShardChange change, (DataVersion Version, string? Body) winner, (DataVersion Version, string? Body) loser)
    {
        LogConflict(ShardId, change.UserId, winner.Version.ToString(), loser.Version.ToString());
        return new
        {
            Bucket = Buckets.Of(change.UserId),
            change.UserId,
            change.Collection,
            change.Key,
            WinnerHlc = winner.Version.Hlc.Value,
            WinnerOrigin = winner.Version.Origin,
            LoserHlc = loser.Version.Hlc.Value,
            LoserOrigin = loser.Version.Origin,
            WinnerBody = winner.Body,
            LoserBody = loser.Body,
            WinnerDeleted = winner.Body is null,
            LoserDeleted = loser.Body is null,
            Now = _time.GetUtcNow(),
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
