using Dapper;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Npgsql;
using NpgsqlTypes;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    private const string SelectEraseMarkersSql = """
        SELECT user_id AS UserId, version_hlc AS VersionHlc, version_origin AS VersionOrigin FROM erased_users WHERE user_id = ANY(@UserIds)
        """;

    private const string SelectDocumentsForUpdateSql = """
        SELECT d.user_id, d.collection, d.key, d.body::text, d.version_hlc, d.version_origin, d.prev_version_hlc, d.prev_version_origin
        FROM documents d JOIN unnest(@UserIds, @Collections, @Keys) AS k(u, c, k) ON d.user_id = k.u AND d.collection = k.c AND d.key = k.k
        FOR UPDATE OF d
        """;

    private const string UpsertDocumentsSql = """
        INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, prev_version_hlc, prev_version_origin, updated_at)
        SELECT u, c, k, b, body::jsonb, body IS NULL, vh, vo, ph, po, @Now
        FROM unnest(@UserIds, @Collections, @Keys, @Buckets, @Bodies, @VersionHlcs, @VersionOrigins, @PrevHlcs, @PrevOrigins) AS t(u, c, k, b, body, vh, vo, ph, po)
        ON CONFLICT (user_id, collection, key) DO UPDATE SET body = excluded.body, deleted = excluded.deleted, version_hlc = excluded.version_hlc,
            version_origin = excluded.version_origin, prev_version_hlc = excluded.prev_version_hlc, prev_version_origin = excluded.prev_version_origin,
            updated_at = excluded.updated_at
        """;

    /// <summary>
    /// Applies consecutive document changes of a replicated batch with a fixed number of round trips instead of three per
    /// change: the users' erase markers and the stored rows in one query each, the decisions in memory (the same rules
    /// as one change at a time, in order, so several changes to one key in a run behave as if applied one by one), then
    /// one upsert of every key's final state. The caller holds every user's lock exclusively, so no local writer or
    /// other batch can change these rows meanwhile.
    /// </summary>
    private async Task ApplyDocumentRunAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ShardChange> run, bool outOfOrder,
        Action<int, bool> outcome, CancellationToken ct)
    {
        var markers = (await connection.QueryAsync<MarkerRow>(new CommandDefinition(SelectEraseMarkersSql,
                new { UserIds = run.Select(c => c.UserId).Distinct(StringComparer.Ordinal).ToArray() }, tx, cancellationToken: ct)))
            .ToDictionary(m => m.UserId, m => new DataVersion(new HlcTimestamp(m.VersionHlc), m.VersionOrigin), StringComparer.Ordinal);
        var state = await SelectDocumentsAsync(connection, tx, run, ct);
        var floors = await TombstoneFloorsAsync(connection, tx, run.Select(c => c.Bucket), ct);
        var dirty = new Dictionary<(string UserId, string Collection, string Key), ShardChange>();
        var conflicts = new List<object>();
        for (var position = 0; position < run.Count; position++)
        {
            var change = run[position];
            if (markers.ContainsKey(change.UserId))
            {
                outcome(position, false); // The user was erased: an erase is final, whatever the change's version.
                continue;
            }

            var id = (change.UserId, change.Collection!, change.Key!);
            var incoming = change.Version;
            var local = state.GetValueOrDefault(id);
            if (local is null && floors.TryGetValue(change.Bucket, out var floor) && incoming <= floor)
            {
                outcome(position, false); // Its key's tombstone may have been collected: never resurrect (Retention/RetentionOptions.cs).
                continue;
            }

            if (local is not null && incoming <= local.Version)
            {
                if (incoming != local.Version && IsConcurrent(incoming, local.Version, local.Previous))
                {
                    conflicts.Add(ConflictArgs(change, winner: (local.Version, local.Body), loser: (incoming, change.Body)));
                }

                outcome(position, false);
                continue;
            }

            var body = change.Deleted ? null : change.Body;
            if (local is not null && IsConcurrent(local.Version, incoming, change.PreviousVersion, outOfOrder))
            {
                conflicts.Add(ConflictArgs(change, winner: (incoming, body), loser: (local.Version, local.Body)));
            }

            state[id] = new StoredState(body, incoming, change.PreviousVersion);
            dirty[id] = change;
            outcome(position, true);
        }

        if (dirty.Count > 0)
        {
            await UpsertDocumentsAsync(connection, tx, dirty, state, ct);
        }

        if (conflicts.Count > 0)
        {
            await connection.ExecuteAsync(new CommandDefinition(InsertConflictSql, conflicts, tx, cancellationToken: ct));
        }
    }

    private static async Task<Dictionary<(string UserId, string Collection, string Key), StoredState>> SelectDocumentsAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ShardChange> run, CancellationToken ct)
    {
        var keys = run.Select(c => (c.UserId, Collection: c.Collection!, Key: c.Key!)).Distinct().ToList();
        await using var command = new NpgsqlCommand(SelectDocumentsForUpdateSql, connection, tx);
        command.Parameters.Add(TextArray("UserIds", keys.Select(k => k.UserId)));
        command.Parameters.Add(TextArray("Collections", keys.Select(k => k.Collection)));
        command.Parameters.Add(TextArray("Keys", keys.Select(k => k.Key)));
        var state = new Dictionary<(string UserId, string Collection, string Key), StoredState>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var previous = reader.IsDBNull(6) ? (DataVersion?)null : new DataVersion(new HlcTimestamp(reader.GetInt64(6)), reader.IsDBNull(7) ? string.Empty : reader.GetString(7));
            state[(reader.GetString(0), reader.GetString(1), reader.GetString(2))] = new StoredState(
                reader.IsDBNull(3) ? null : reader.GetString(3), new DataVersion(new HlcTimestamp(reader.GetInt64(4)), reader.GetString(5)), previous);
        }

        return state;
    }

    private async Task UpsertDocumentsAsync(NpgsqlConnection connection, NpgsqlTransaction tx,
        Dictionary<(string UserId, string Collection, string Key), ShardChange> dirty,
        Dictionary<(string UserId, string Collection, string Key), StoredState> state, CancellationToken ct)
    {
        var rows = dirty.Select(d => (Id: d.Key, Change: d.Value, State: state[d.Key])).ToList();
        await using var command = new NpgsqlCommand(UpsertDocumentsSql, connection, tx);
        command.Parameters.Add(TextArray("UserIds", rows.Select(r => r.Id.UserId)));
        command.Parameters.Add(TextArray("Collections", rows.Select(r => r.Id.Collection)));
        command.Parameters.Add(TextArray("Keys", rows.Select(r => r.Id.Key)));
        command.Parameters.Add(new NpgsqlParameter<int[]>("Buckets", NpgsqlDbType.Array | NpgsqlDbType.Integer) { TypedValue = [.. rows.Select(r => Buckets.Of(r.Id.UserId))] });
        command.Parameters.Add(TextArray("Bodies", rows.Select(r => r.State.Body)));
        command.Parameters.Add(new NpgsqlParameter<long[]>("VersionHlcs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. rows.Select(r => r.State.Version.Hlc.Value)] });
        command.Parameters.Add(TextArray("VersionOrigins", rows.Select(r => r.State.Version.Origin)));
        command.Parameters.Add(new NpgsqlParameter<long?[]>("PrevHlcs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. rows.Select(r => r.State.Previous?.Hlc.Value)] });
        command.Parameters.Add(TextArray("PrevOrigins", rows.Select(r => r.State.Previous?.Origin)));
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("Now", NpgsqlDbType.TimestampTz) { TypedValue = _time.GetUtcNow() });
        await command.ExecuteNonQueryAsync(ct);
    }

    private static NpgsqlParameter<string?[]> TextArray(string name, IEnumerable<string?> values) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. values] };

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

    private sealed record MarkerRow(string UserId, long VersionHlc, string VersionOrigin);

    /// <summary>A stored document as the run sees it: body (null for a tombstone), version, and the version it replaced.</summary>
    private sealed record StoredState(string? Body, DataVersion Version, DataVersion? Previous);
}
