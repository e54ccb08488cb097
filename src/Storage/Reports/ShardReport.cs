using Dapper;
using Npgsql;

namespace Geo.Storage.Reports;

/// <summary>
/// Read-only reports on one shard database for geoctl (status, conflicts, checkpoints, the demo): the statements live
/// here, beside the schema they read; the caller opens and owns the connection.
/// </summary>
public static class ShardReport
{
    private const string ConflictsSql = """
        SELECT id AS Id, user_id AS UserId, collection AS Collection, key AS Key,
               winner_version_hlc AS WinnerHlc, winner_origin AS WinnerOrigin, loser_version_hlc AS LoserHlc, loser_origin AS LoserOrigin,
               winner_body::text AS WinnerBody, loser_body::text AS LoserBody, detected_at AS DetectedAt
        FROM conflicts WHERE (@UserId::text IS NULL OR user_id = @UserId::text) ORDER BY detected_at DESC, id DESC LIMIT @Limit
        """;

    // Conflicts this region's shards logged against each other region (the origin of the other side of the conflict).
    private const string ConflictsByPeerSql = """
        SELECT CASE WHEN winner_origin = @Region THEN loser_origin ELSE winner_origin END AS Peer, count(*) AS Count
        FROM conflicts GROUP BY 1
        """;

    private const string RecentConflictsSql = """
        SELECT user_id AS UserId, collection AS Collection, key AS Key, winner_origin AS WinnerOrigin, loser_origin AS LoserOrigin, detected_at AS DetectedAt
        FROM conflicts ORDER BY id DESC LIMIT @Limit
        """;

    /// <summary>The newest conflict-log entries, of one user or of all (<paramref name="userId"/> null), newest first.</summary>
    public static async Task<IReadOnlyList<ConflictEntry>> ConflictsAsync(NpgsqlConnection connection, string? userId, int limit, CancellationToken ct) =>
        [.. await connection.QueryAsync<ConflictEntry>(new CommandDefinition(ConflictsSql, new { UserId = userId, Limit = limit }, cancellationToken: ct))];

    /// <summary>Conflict-log entries per other region: the origin of the side that is not <paramref name="region"/>'s.</summary>
    public static async Task<IReadOnlyList<(string Peer, long Count)>> ConflictsByPeerAsync(NpgsqlConnection connection, string region, CancellationToken ct) =>
        [.. await connection.QueryAsync<(string, long)>(new CommandDefinition(ConflictsByPeerSql, new { Region = region }, cancellationToken: ct))];

    /// <summary>The last <paramref name="limit"/> conflict-log entries, without bodies, newest first.</summary>
    public static async Task<IReadOnlyList<ConflictSummary>> RecentConflictsAsync(NpgsqlConnection connection, int limit, CancellationToken ct) =>
        [.. await connection.QueryAsync<ConflictSummary>(new CommandDefinition(RecentConflictsSql, new { Limit = limit }, cancellationToken: ct))];

    /// <summary>The change log's head (its highest seq, 0 when empty) and the database's size in bytes.</summary>
    public static Task<(long Head, long SizeBytes)> ChangeLogHeadAndSizeAsync(NpgsqlConnection connection, CancellationToken ct) =>
        connection.QuerySingleAsync<(long, long)>(new CommandDefinition(
            "SELECT coalesce((SELECT max(seq) FROM change_log), 0), pg_database_size(current_database())", cancellationToken: ct));

    /// <summary>The database's size in bytes.</summary>
    public static Task<long> DatabaseSizeAsync(NpgsqlConnection connection, CancellationToken ct) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT pg_database_size(current_database())", cancellationToken: ct));

    /// <summary>The user's documents plus change-log entries on the shard (0 once an erase removed them).</summary>
    public static Task<long> UserRowsAsync(NpgsqlConnection connection, string userId, CancellationToken ct) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT (SELECT count(*) FROM documents WHERE user_id = @u) + (SELECT count(*) FROM change_log WHERE user_id = @u)", new { u = userId }, cancellationToken: ct));
}

/// <summary>One conflict-log entry: the winning and losing versions and bodies (a null body: a delete).</summary>
public sealed record ConflictEntry(long Id, string UserId, string Collection, string Key, long WinnerHlc, string WinnerOrigin, long LoserHlc, string LoserOrigin,
    string? WinnerBody, string? LoserBody, DateTime DetectedAt);

/// <summary>One conflict-log entry without its versions and bodies.</summary>
public sealed record ConflictSummary(string UserId, string Collection, string Key, string WinnerOrigin, string LoserOrigin, DateTime DetectedAt);
