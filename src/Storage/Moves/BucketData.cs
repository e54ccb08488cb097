using System.Data;
using System.Globalization;
using Dapper;
using Npgsql;

namespace Geo.Storage.Moves;

/// <summary>
/// Moves the rows of a set of buckets between two shard databases with COPY (binary, streamed), merging into the
/// target with the same apply-if-newer rules as replication, so repeating a copy is harmless. Also compares and
/// cleans the rows of buckets: the SQL of geoctl's shard moves (docs/architecture.md §9), on the tables of this
/// assembly's migrations.
/// </summary>
public static class BucketData
{
    private const string DocumentColumns = "user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, prev_version_hlc, prev_version_origin, updated_at";
    private const string CounterColumns = "user_id, name, region, bucket, incr, decr, version_hlc, version_origin, updated_at";
    private const string ErasedColumns = "user_id, bucket, version_hlc, version_origin, erased_at";
    private const string ConflictColumns = "bucket, user_id, collection, key, winner_version_hlc, winner_origin, loser_version_hlc, loser_origin, winner_body, loser_body, winner_deleted, loser_deleted, detected_at";
    private const string IdempotencyColumns = "user_id, key, request_hash, state, claim_token, status, response_body, response_headers, created_at, expires_at";

    // The users with any row in the buckets: idempotency records carry no bucket.
    private const string UsersOfBuckets = """
        SELECT user_id FROM documents WHERE bucket = ANY({0}) UNION SELECT user_id FROM counters WHERE bucket = ANY({0})
        UNION SELECT user_id FROM erased_users WHERE bucket = ANY({0})
        """;

    private static readonly Table[] Tables =
    [
        new("documents", DocumentColumns, "bucket = ANY({0})", """
            ON CONFLICT (user_id, collection, key) DO UPDATE SET body = excluded.body, deleted = excluded.deleted,
                version_hlc = excluded.version_hlc, version_origin = excluded.version_origin, prev_version_hlc = excluded.prev_version_hlc,
                prev_version_origin = excluded.prev_version_origin, updated_at = excluded.updated_at
            WHERE (excluded.version_hlc, excluded.version_origin) > (t.version_hlc, t.version_origin)
            """),
        new("counters", CounterColumns, "bucket = ANY({0})", """
            ON CONFLICT (user_id, name, region) DO UPDATE SET incr = greatest(t.incr, excluded.incr), decr = greatest(t.decr, excluded.decr),
                version_hlc = CASE WHEN (excluded.version_hlc, excluded.version_origin) > (t.version_hlc, t.version_origin) THEN excluded.version_hlc ELSE t.version_hlc END,
                version_origin = CASE WHEN (excluded.version_hlc, excluded.version_origin) > (t.version_hlc, t.version_origin) THEN excluded.version_origin ELSE t.version_origin END,
                updated_at = excluded.updated_at
            WHERE excluded.incr > t.incr OR excluded.decr > t.decr
            """),
        new("erased_users", ErasedColumns, "bucket = ANY({0})", """
            ON CONFLICT (user_id) DO UPDATE SET version_hlc = excluded.version_hlc, version_origin = excluded.version_origin, erased_at = excluded.erased_at
            WHERE (excluded.version_hlc, excluded.version_origin) > (t.version_hlc, t.version_origin)
            """),
        new("conflicts", ConflictColumns, "bucket = ANY({0})", "ON CONFLICT DO NOTHING"),
        IdempotencyTable,
    ];

    private static Table IdempotencyTable => new("idempotency", IdempotencyColumns, $"state = 'done' AND user_id IN ({UsersOfBuckets})", "ON CONFLICT (user_id, key) DO NOTHING");

    /// <summary>
    /// Copies every row of <paramref name="buckets"/> from one consistent snapshot of the source; returns the source's
    /// change-log position of that snapshot (catch-up replays what came after it) and the rows merged per table.
    /// </summary>
    public static async Task<(long SnapshotSeq, Dictionary<string, long> Rows)> CopyAsync(
        NpgsqlDataSource source, NpgsqlDataSource target, IReadOnlyCollection<int> buckets, Action<string, long> tableDone, CancellationToken ct)
    {
        await using var src = await source.OpenConnectionAsync(ct);
        // Taken before the snapshot: every change up to it has committed, so the snapshot holds it (catch-up replays the
        // rest; a change both in the snapshot and after the position is applied twice, which changes nothing).
        var seq = await StablePositionAsync(src, ct);
        await using var srcTx = await src.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        var rows = await CopyTablesAsync(src, target, Tables, buckets, tableDone, ct);
        await srcTx.CommitAsync(ct);
        return (seq, rows);
    }

    /// <summary>
    /// Copies the completed idempotency records of the buckets' users (records have no change log). With
    /// <paramref name="sinceSeq"/>, only those of users with a change in the buckets after that change-log position: a
    /// write stores its record in its own transaction, so those are all the records completed since (a stored refusal
    /// that wrote nothing is not among them). Returns the source's change-log position of the copy's snapshot.
    /// </summary>
    public static async Task<(long SnapshotSeq, long Rows)> CopyIdempotencyAsync(
        NpgsqlDataSource source, NpgsqlDataSource target, IReadOnlyCollection<int> buckets, long? sinceSeq, CancellationToken ct)
    {
        var table = sinceSeq is { } seq
            ? IdempotencyTable with { Filter = $"state = 'done' AND user_id IN (SELECT user_id FROM change_log WHERE bucket = ANY({{0}}) AND seq > {seq.ToString(CultureInfo.InvariantCulture)})" }
            : IdempotencyTable;
        await using var src = await source.OpenConnectionAsync(ct);
        var snapshot = await StablePositionAsync(src, ct);
        await using var srcTx = await src.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        var rows = await CopyTablesAsync(src, target, [table], buckets, (_, _) => { }, ct);
        await srcTx.CommitAsync(ct);
        return (snapshot, rows.Values.Sum());
    }

    /// <summary>
    /// The fenced window's catch-up in a few statements whatever the number of changes: the current rows (documents,
    /// counters) of every user with a change in the buckets after <paramref name="afterSeq"/>, copied and merged like
    /// the first copy. Only valid while the source is fenced (its rows no longer change); the changes stay in the
    /// source's log, which the replicator ships. Returns null when the window holds a user erase (that deletes rows on
    /// the target, so it must be replayed from the log), else the changes covered and the log position reached.
    /// </summary>
    public static async Task<(int Changes, long LastSeq)?> RecopyChangedUsersAsync(
        NpgsqlDataSource source, NpgsqlDataSource target, IReadOnlyCollection<int> buckets, long afterSeq, CancellationToken ct)
    {
        var list = Literal(buckets);
        await using var src = await source.OpenConnectionAsync(ct);
        await using var srcTx = await src.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        var window = (await src.QueryAsync<(string UserId, string Kind, long Seq)>(new CommandDefinition(
            $"SELECT user_id, kind, seq FROM change_log WHERE bucket = ANY({list}) AND seq > @AfterSeq", new { AfterSeq = afterSeq }, srcTx, cancellationToken: ct))).ToList();
        if (window.Count == 0)
        {
            return (0, afterSeq);
        }

        if (window.Any(c => c.Kind is not ("doc" or "counter")))
        {
            return null;
        }

        // User ids are text: quoted as SQL literals (COPY takes no parameters), so any id is safe.
        var users = "ARRAY[" + string.Join(',', window.Select(c => c.UserId).Distinct(StringComparer.Ordinal).Select(u => "'" + u.Replace("'", "''", StringComparison.Ordinal) + "'")) + "]::text[]";
        users = users.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal); // the filter is a format string
        var tables = Tables.Where(t => t.Name is "documents" or "counters").Select(t => t with { Filter = $"bucket = ANY({{0}}) AND user_id = ANY({users})" });
        await CopyTablesAsync(src, target, tables, buckets, (_, _) => { }, ct);
        await srcTx.CommitAsync(ct);
        return (window.Count, window.Max(c => c.Seq));
    }

    private static async Task<long> StablePositionAsync(NpgsqlConnection connection, CancellationToken ct)
        => await ChangeLogWatermark.StablePositionAsync(connection, TimeSpan.FromSeconds(30), ct)
            ?? throw new TimeoutException("A transaction on the source shard stayed open for 30 s; the copy cannot pick a change-log position. Retry the move.");

    /// <summary>Deletes every row of <paramref name="buckets"/> (and their users' idempotency records) from a shard; returns how many.</summary>
    public static async Task<long> DeleteAsync(NpgsqlDataSource shard, IReadOnlyCollection<int> buckets, CancellationToken ct)
    {
        var list = Literal(buckets);
        await using var connection = await shard.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        long deleted = 0;
        deleted += await connection.ExecuteAsync(new CommandDefinition(
            $"DELETE FROM idempotency WHERE user_id IN ({string.Format(CultureInfo.InvariantCulture, UsersOfBuckets, list)})", transaction: tx, cancellationToken: ct));
        foreach (var table in new[] { "documents", "counters", "erased_users", "conflicts" })
        {
            deleted += await connection.ExecuteAsync(new CommandDefinition($"DELETE FROM {table} WHERE bucket = ANY({list})", transaction: tx, cancellationToken: ct));
        }

        await tx.CommitAsync(ct);
        return deleted;
    }

    /// <summary>Buckets with any row on the shard.</summary>
    public static async Task<IReadOnlyCollection<int>> BucketsWithRowsAsync(NpgsqlDataSource shard, CancellationToken ct)
    {
        await using var connection = await shard.OpenConnectionAsync(ct);
        return [.. await connection.QueryAsync<int>(new CommandDefinition(
            "SELECT bucket FROM documents UNION SELECT bucket FROM counters UNION SELECT bucket FROM erased_users", cancellationToken: ct))];
    }

    /// <summary>Every row of the buckets, keyed by its identity, with what decides which of two copies is newer.</summary>
    public static async Task<Dictionary<string, RowState>> ReadRowsAsync(NpgsqlDataSource shard, IReadOnlyCollection<int> buckets, CancellationToken ct)
    {
        var list = Literal(buckets);
        var sql = $"""
            SELECT 'd' || chr(31) || user_id || chr(31) || collection || chr(31) || key AS Id, user_id AS UserId, version_hlc AS Hlc, version_origin AS Origin,
                   md5(coalesce(body::text, '')) || deleted::text AS Value, 0::bigint AS Incr, 0::bigint AS Decr
              FROM documents WHERE bucket = ANY({list})
            UNION ALL
            SELECT 'c' || chr(31) || user_id || chr(31) || name || chr(31) || region, user_id, version_hlc, version_origin, '', incr, decr
              FROM counters WHERE bucket = ANY({list})
            UNION ALL
            SELECT 'e' || chr(31) || user_id, user_id, version_hlc, version_origin, '', 0, 0 FROM erased_users WHERE bucket = ANY({list})
            """;
        await using var connection = await shard.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<RowState>(new CommandDefinition(sql, cancellationToken: ct));
        return rows.ToDictionary(r => r.Id, StringComparer.Ordinal);
    }

    /// <summary>
    /// The latest change of every row of the buckets in a shard's change log: what the shard ever held for them,
    /// in the same shape as <see cref="ReadRowsAsync"/> (a completed move's source keeps its log for the replicator).
    /// </summary>
    public static async Task<Dictionary<string, RowState>> ReadLoggedRowsAsync(NpgsqlDataSource shard, IReadOnlyCollection<int> buckets, CancellationToken ct)
    {
        var list = Literal(buckets);
        var sql = $"""
            SELECT DISTINCT ON (Id) Id, UserId, Hlc, Origin, Value, Incr, Decr FROM (
                SELECT CASE kind WHEN 'doc' THEN 'd' || chr(31) || user_id || chr(31) || collection || chr(31) || key
                                 WHEN 'counter' THEN 'c' || chr(31) || user_id || chr(31) || counter_name || chr(31) || counter_region
                                 ELSE 'e' || chr(31) || user_id END AS Id,
                       user_id AS UserId, version_hlc AS Hlc, version_origin AS Origin,
                       CASE kind WHEN 'doc' THEN md5(coalesce(body::text, '')) || deleted::text ELSE '' END AS Value,
                       coalesce(incr, 0) AS Incr, coalesce(decr, 0) AS Decr, seq
                  FROM change_log WHERE bucket = ANY({list})) AS c
            ORDER BY Id, Hlc DESC, Origin DESC, seq DESC
            """;
        await using var connection = await shard.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<RowState>(new CommandDefinition(sql, cancellationToken: ct));
        return rows.ToDictionary(r => r.Id, StringComparer.Ordinal);
    }

    /// <summary>A SQL array literal of buckets (integers only, so inlining is safe; COPY takes no parameters).</summary>
    private static string Literal(IEnumerable<int> buckets) => $"'{{{string.Join(',', buckets.Select(b => b.ToString(CultureInfo.InvariantCulture)))}}}'::int[]";

    private static async Task<Dictionary<string, long>> CopyTablesAsync(
        NpgsqlConnection src, NpgsqlDataSource target, IEnumerable<Table> tables, IReadOnlyCollection<int> buckets, Action<string, long> tableDone, CancellationToken ct)
    {
        var list = Literal(buckets);
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var dst = await target.OpenConnectionAsync(ct);
        await using var dstTx = await dst.BeginTransactionAsync(ct);
        foreach (var table in tables)
        {
            var stage = $"stage_{table.Name}";
            await dst.ExecuteAsync(new CommandDefinition($"CREATE TEMP TABLE {stage} (LIKE {table.Name}) ON COMMIT DROP", transaction: dstTx, cancellationToken: ct));
            var filter = string.Format(CultureInfo.InvariantCulture, table.Filter, list);
            await using (var reader = await src.BeginRawBinaryCopyAsync($"COPY (SELECT {table.Columns} FROM {table.Name} WHERE {filter}) TO STDOUT (FORMAT BINARY)", ct))
            await using (var writer = await dst.BeginRawBinaryCopyAsync($"COPY {stage} ({table.Columns}) FROM STDIN (FORMAT BINARY)", ct))
            {
                await reader.CopyToAsync(writer, ct);
            }

            var merged = await dst.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {table.Name} AS t ({table.Columns}) SELECT {table.Columns} FROM {stage} {table.Merge}", transaction: dstTx, cancellationToken: ct));
            rows[table.Name] = merged;
            tableDone(table.Name, merged);
        }

        await dstTx.CommitAsync(ct);
        return rows;
    }

    private sealed record Table(string Name, string Columns, string Filter, string Merge);
}
