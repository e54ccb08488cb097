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
        SELECT d.user_id AS UserId, d.collection AS Collection, d.key AS Key, d.body::text AS Body, d.version_hlc AS VersionHlc,
               d.version_origin AS VersionOrigin, d.prev_version_hlc AS PrevHlc, d.prev_version_origin AS PrevOrigin
        FROM documents d JOIN unnest(@KeyUsers::text[], @Collections::text[], @Keys::text[]) AS k(u, c, k) ON d.user_id = k.u AND d.collection = k.c AND d.key = k.k
        FOR UPDATE OF d
        """;

    // Everything a batch of documents reads, in one round trip and in the order the multi-statement path takes it: the
    // users' locks, the buckets' fence locks and fences (LockBucketsSharedSql), the erase markers, the stored rows
    // (locked) and the tombstone floors. Statements of one command run in order, each with its own snapshot (READ
    // COMMITTED), so every read after the locks sees what committed before they were granted.
    private const string ReadDocumentBatchSql = "SELECT count(*) FROM (" + LockUsersExclusiveSql + ") AS l;\n" + LockBucketsSharedSql
        + SelectEraseMarkersSql + ";\n" + SelectDocumentsForUpdateSql + ";\n" + TombstoneFloorsSql;

    private const string UpsertDocumentsSql = """
        INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, prev_version_hlc, prev_version_origin, updated_at)
        SELECT u, c, k, b, body::jsonb, body IS NULL, vh, vo, ph, po, @Now
        FROM unnest(@UserIds, @Collections, @Keys, @Buckets, @Bodies, @VersionHlcs, @VersionOrigins, @PrevHlcs, @PrevOrigins) AS t(u, c, k, b, body, vh, vo, ph, po)
        ON CONFLICT (user_id, collection, key) DO UPDATE SET body = excluded.body, deleted = excluded.deleted, version_hlc = excluded.version_hlc,
            version_origin = excluded.version_origin, prev_version_hlc = excluded.prev_version_hlc, prev_version_origin = excluded.prev_version_origin,
            updated_at = excluded.updated_at
        """;

    /// <summary>
    /// Applies a replicated batch of documents only (the common case) in two round trips: every read in one
    /// (<see cref="ReadDocumentBatchSql"/>), the decisions in memory (<see cref="DecideRun"/>), then the rows, the
    /// checkpoint, the change-log entries and the commit in one. The same locks, checks and rules as the general path
    /// in <see cref="ApplyRemoteAsync"/>, which takes a round trip per step.
    /// </summary>
    private async Task<IReadOnlyList<ApplyOutcome>> ApplyDocumentBatchAsync(IReadOnlyList<ShardChange> changes, ReplicationCheckpoint? checkpoint, bool outOfOrder,
        CancellationToken ct)
    {
        var outcomes = new ApplyOutcome[changes.Count];
        var positions = new List<int>(changes.Count);
        for (var i = 0; i < changes.Count; i++)
        {
            if (Quarantine(changes[i]))
            {
                outcomes[i] = ApplyOutcome.Quarantined;
                continue;
            }

            positions.Add(i);
        }

        var run = positions.Select(i => changes[i]).ToList();
        var users = changes.Select(c => c.UserId).Distinct(StringComparer.Ordinal).ToArray();
        var keys = KeyArrays(run);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        RunState state;
        using (var results = await connection.QueryMultipleAsync(new CommandDefinition(ReadDocumentBatchSql, new
               {
                   UserLockClass, UserIds = users, FenceLockClass, Buckets = users.Select(Buckets.Of).Distinct().ToArray(),
                   KeyUsers = keys.Users, keys.Collections, keys.Keys,
               }, tx, cancellationToken: ct)))
        {
            await results.ReadSingleAsync<long>();
            await results.ReadSingleAsync<long>();
            if (await results.ReadSingleOrDefaultAsync<BucketFence>() is { } fence)
            {
                throw new BucketFencedException(ShardId, fence.Bucket, fence.Epoch, fence.MoveId);
            }

            state = RunState.Of(await results.ReadAsync<MarkerRow>(), await results.ReadAsync<StoredRow>(), await results.ReadAsync<FloorRow>());
        }

        var applied = new List<ShardChange>(run.Count);
        var (dirty, conflicts) = DecideRun(run, state, outOfOrder, (position, done) =>
        {
            outcomes[positions[position]] = done ? ApplyOutcome.Applied : ApplyOutcome.Skipped;
            if (done)
            {
                applied.Add(run[position]);
            }
        });
        if (conflicts.Count > 0)
        {
            await connection.ExecuteAsync(new CommandDefinition(InsertConflictSql, conflicts, tx, cancellationToken: ct));
        }

        await CommitApplyAsync(connection, tx, dirty.Count > 0 ? UpsertDocumentsCommand(dirty, state.Stored) : null, checkpoint, applied, ct);
        return outcomes;
    }

    /// <summary>
    /// Applies consecutive document changes of a replicated batch with a fixed number of round trips instead of three per
    /// change (the general path, for a batch that mixes kinds): the users' erase markers and the stored rows in one query
    /// each, the decisions in memory, then one upsert of every key's final state. The caller holds every user's lock
    /// exclusively, so no local writer or other batch can change these rows meanwhile.
    /// </summary>
    private async Task ApplyDocumentRunAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ShardChange> run, bool outOfOrder,
        Action<int, bool> outcome, CancellationToken ct)
    {
        var keys = KeyArrays(run);
        var state = RunState.Of(
            await connection.QueryAsync<MarkerRow>(new CommandDefinition(SelectEraseMarkersSql,
                new { UserIds = run.Select(c => c.UserId).Distinct(StringComparer.Ordinal).ToArray() }, tx, cancellationToken: ct)),
            await connection.QueryAsync<StoredRow>(new CommandDefinition(SelectDocumentsForUpdateSql,
                new { KeyUsers = keys.Users, keys.Collections, keys.Keys },
                tx, cancellationToken: ct)),
            await connection.QueryAsync<FloorRow>(new CommandDefinition(TombstoneFloorsSql, new { Buckets = run.Select(c => c.Bucket).Distinct().ToArray() }, tx, cancellationToken: ct)));
        var (dirty, conflicts) = DecideRun(run, state, outOfOrder, outcome);
        if (dirty.Count > 0)
        {
            await using var upsert = new NpgsqlBatch(connection, tx) { BatchCommands = { UpsertDocumentsCommand(dirty, state.Stored) } };
            await upsert.ExecuteNonQueryAsync(ct);
        }

        if (conflicts.Count > 0)
        {
            await connection.ExecuteAsync(new CommandDefinition(InsertConflictSql, conflicts, tx, cancellationToken: ct));
        }
    }

    /// <summary>
    /// The rules of a replicated run, in order, on what it read (so several changes to one key in a run behave as if
    /// applied one by one): an erased user's changes are skipped; a key whose tombstone may have been collected is not
    /// resurrected; a change not newer than the stored value is skipped; concurrent losers go to the conflict log.
    /// Updates <paramref name="state"/> to each key's final value; returns the keys to write and the conflict entries.
    /// </summary>
    private (Dictionary<(string UserId, string Collection, string Key), ShardChange> Dirty, List<object> Conflicts) DecideRun(
        IReadOnlyList<ShardChange> run, RunState state, bool outOfOrder, Action<int, bool> outcome)
    {
        var dirty = new Dictionary<(string UserId, string Collection, string Key), ShardChange>();
        var conflicts = new List<object>();
        for (var position = 0; position < run.Count; position++)
        {
            var change = run[position];
            if (state.Markers.ContainsKey(change.UserId))
            {
                outcome(position, false); // The user was erased: an erase is final, whatever the change's version.
                continue;
            }

            var id = (change.UserId, change.Collection!, change.Key!);
            var incoming = change.Version;
            var local = state.Stored.GetValueOrDefault(id);
            if (local is null && state.Floors.TryGetValue(change.Bucket, out var floor) && incoming <= floor)
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

            state.Stored[id] = new StoredState(body, incoming, change.PreviousVersion);
            dirty[id] = change;
            outcome(position, true);
        }

        return (dirty, conflicts);
    }

    /// <summary>A run's distinct keys as the three arrays <see cref="SelectDocumentsForUpdateSql"/> unnests.</summary>
    private static (string[] Users, string[] Collections, string[] Keys) KeyArrays(IEnumerable<ShardChange> run)
    {
        var keys = run.Select(c => (c.UserId, Collection: c.Collection!, Key: c.Key!)).Distinct().ToList();
        return ([.. keys.Select(k => k.UserId)], [.. keys.Select(k => k.Collection)], [.. keys.Select(k => k.Key)]);
    }

    private NpgsqlBatchCommand UpsertDocumentsCommand(Dictionary<(string UserId, string Collection, string Key), ShardChange> dirty,
        Dictionary<(string UserId, string Collection, string Key), StoredState> state)
    {
        var rows = dirty.Select(d => (Id: d.Key, Change: d.Value, State: state[d.Key])).ToList();
        var command = new NpgsqlBatchCommand(UpsertDocumentsSql);
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
        return command;
    }

    private static NpgsqlParameter<string?[]> TextArray(string name, IEnumerable<string?> values) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. values] };

    private sealed record MarkerRow(string UserId, long VersionHlc, string VersionOrigin);

    private sealed record StoredRow(string UserId, string Collection, string Key, string? Body, long VersionHlc, string VersionOrigin, long? PrevHlc, string? PrevOrigin)
    {
        public StoredState ToState() => new(Body, new DataVersion(new HlcTimestamp(VersionHlc), VersionOrigin),
            PrevHlc is { } prev ? new DataVersion(new HlcTimestamp(prev), PrevOrigin ?? string.Empty) : null);
    }

    /// <summary>What a run decides on: erase markers by user, stored rows by key (updated as the run decides), tombstone floors by bucket.</summary>
    private sealed record RunState(Dictionary<string, DataVersion> Markers, Dictionary<(string UserId, string Collection, string Key), StoredState> Stored,
        Dictionary<int, DataVersion> Floors)
    {
        public static RunState Of(IEnumerable<MarkerRow> markers, IEnumerable<StoredRow> stored, IEnumerable<FloorRow> floors) => new(
            markers.ToDictionary(m => m.UserId, m => new DataVersion(new HlcTimestamp(m.VersionHlc), m.VersionOrigin), StringComparer.Ordinal),
            stored.ToDictionary(r => (r.UserId, r.Collection, r.Key), r => r.ToState()),
            floors.ToDictionary(r => r.Bucket, r => new DataVersion(new HlcTimestamp(r.VersionHlc), r.VersionOrigin)));
    }

    /// <summary>A stored document as the run sees it: body (null for a tombstone), version, and the version it replaced.</summary>
    private sealed record StoredState(string? Body, DataVersion Version, DataVersion? Previous);
}
