using Dapper;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Geo.Storage;

/// <summary>
/// Data access for one shard database of one region: documents, counters, idempotency records, the change
/// log (transactional outbox), replicated applies with conflict logging, user erasure and bucket digests.
/// Every write commits its row, its change-log entry and its idempotency record in one transaction.
/// Thread-safe; create one per shard and share it.
/// </summary>
public sealed partial class ShardStore
{
    // Class id of the per-user advisory locks (two-int form, a separate key space from the bigint locks above).
    private const int UserLockClass = 0x6765;

    private const string LockUserSharedSql = "SELECT pg_advisory_xact_lock_shared(@UserLockClass, hashtext(@UserId))";

    private const string LockUserExclusiveSql = "SELECT pg_advisory_xact_lock(@UserLockClass, hashtext(@UserId))";

    // Locks every user of a replicated batch in one statement, in lock-id order, so concurrent batches cannot deadlock.
    private const string LockUsersExclusiveSql = """
        SELECT pg_advisory_xact_lock(@UserLockClass, h) FROM (SELECT DISTINCT hashtext(u) AS h FROM unnest(@UserIds::text[]) AS u ORDER BY 1) AS t
        """;

    private const string EraseMarkerSql = "SELECT version_hlc AS VersionHlc, version_origin AS VersionOrigin FROM erased_users WHERE user_id = @UserId";

    // Appends run concurrently (no lock orders them; readers stop at the stable position, see ChangeLogWatermark). The
    // transaction id is assigned before any seq is drawn: the uncorrelated subquery in WHERE is an init plan, run once
    // before the first row is projected, and nextval is in the projection. One statement for every entry of a
    // transaction (a replicated batch appends hundreds), in the order given.
    private const string AppendChangesSql = """
        INSERT INTO change_log (seq, bucket, user_id, kind, collection, key, counter_name, counter_region, body, deleted, incr, decr,
                                version_hlc, version_origin, prev_version_hlc, prev_version_origin, erase_hlc, erase_origin, origin, created_at, trace_parent)
        SELECT nextval('change_log_seq_seq'), b, u, k, c, ky, cn, cr, body::jsonb, del, inc, dec, vh, vo, ph, po, eh, eo, o, $19, tp
        FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::bigint[],
                    $11::bigint[], $12::bigint[], $13::text[], $14::bigint[], $15::text[], $16::bigint[], $17::text[], $18::text[], $20::text[])
             WITH ORDINALITY AS t(b, u, k, c, ky, cn, cr, body, del, inc, dec, vh, vo, ph, po, eh, eo, o, tp, n)
        WHERE (SELECT pg_current_xact_id()) IS NOT NULL
        ORDER BY n
        RETURNING seq
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly HybridLogicalClock _clock;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    // Every change-log seq up to this is final (see ChangeLogWatermark); only grows.
    private long _stablePosition;

    // The local log's tail, read once for all of the shard's senders.
    private readonly RecentChanges _recent;

    private readonly SharedObservation<StablePosition?> _stableObservation;

    /// <param name="shardId">The shard this store serves, e.g. <c>eu-west-0</c> (for logs).</param>
    /// <param name="regionId">The local region: origin of every version this store creates.</param>
    /// <param name="dataSource">The shard's data source (one per shard per process).</param>
    /// <param name="clock">The region's hybrid logical clock.</param>
    /// <param name="time">Wall clock for timestamps and expiry; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="logger">Logger; none when null.</param>
    public ShardStore(string shardId, string regionId, NpgsqlDataSource dataSource, HybridLogicalClock clock, TimeProvider? time = null, ILogger<ShardStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(shardId);
        ArgumentException.ThrowIfNullOrWhiteSpace(regionId);
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(clock);
        ShardId = shardId;
        RegionId = regionId;
        _dataSource = dataSource;
        _clock = clock;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _recent = new RecentChanges(_time);
        _stableObservation = new SharedObservation<StablePosition?>(ComputeStablePositionAsync);
    }

    /// <summary>The shard this store serves.</summary>
    public string ShardId { get; }

    /// <summary>The local region (origin of local versions).</summary>
    public string RegionId { get; }

    // Per-user advisory locks order erasure against writes: local writes take the user's lock shared, an erase
    // (and a replicated batch) exclusively, so no write can slip between an erase's check and its tombstoning.

    /// <summary>A version for a local write that is greater than <paramref name="stored"/> (and every earlier reading).</summary>
    private DataVersion NextVersion(DataVersion? stored)
    {
        var hlc = _clock.Now();
        if (stored is { } s && hlc <= s.Hlc)
        {
            // The stored version came from a clock ahead of ours; catch up so versions per key strictly increase.
            if (!_clock.TryObserve(s.Hlc))
            {
                throw new InvalidOperationException($"Stored version {s} on shard {ShardId} is beyond the clock skew bound; refusing to write.");
            }

            hlc = _clock.Now();
        }

        return new DataVersion(hlc, RegionId);
    }

    /// <summary>
    /// The first step of every local write: takes the user's lock, then the bucket's fence lock shared, and throws
    /// <see cref="BucketFencedException"/> when a move fenced the bucket on this shard (see ShardStore.Fences.cs).
    /// </summary>
    private async Task LockUserAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, bool exclusive, CancellationToken ct)
    {
        await connection.ExecuteAsync(new CommandDefinition(exclusive ? LockUserExclusiveSql : LockUserSharedSql, new { UserLockClass, UserId = userId }, tx, cancellationToken: ct));
        await RequireUnfencedAsync(connection, tx, [Buckets.Of(userId)], ct);
    }

    /// <summary>The first step of a replicated batch: every user's lock exclusively, then the fence check of every bucket.</summary>
    private async Task LockUsersAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyCollection<string> userIds, CancellationToken ct)
    {
        await connection.ExecuteAsync(new CommandDefinition(LockUsersExclusiveSql, new { UserLockClass, UserIds = userIds.Distinct(StringComparer.Ordinal).ToArray() }, tx, cancellationToken: ct));
        await RequireUnfencedAsync(connection, tx, [.. userIds.Select(Buckets.Of).Distinct()], ct);
    }

    private static async Task<DataVersion> EraseMarkerAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<VersionRow>(new CommandDefinition(EraseMarkerSql, new { UserId = userId }, tx, cancellationToken: ct));
        return row?.Version ?? DataVersion.None;
    }

    /// <summary>
    /// Appends entries to the change log as the last step before commit, every entry in one round trip, without any
    /// shard-wide lock. Returns the assigned sequence numbers.
    /// </summary>
    private async Task<long[]> AppendChangesAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ShardChange> changes, CancellationToken ct)
    {
        if (changes.Count == 0)
        {
            return [];
        }

        await using var batch = new NpgsqlBatch(connection, tx) { BatchCommands = { AppendChangesCommand(changes) } };
        var seqs = new long[changes.Count];
        await using var reader = await batch.ExecuteReaderAsync(ct);
        for (var i = 0; i < seqs.Length && await reader.ReadAsync(ct); i++)
        {
            seqs[i] = reader.GetInt64(0);
        }

        return seqs;
    }

    /// <summary>The change-log append of <paramref name="changes"/> (<see cref="AppendChangesSql"/>), to run last before the commit.</summary>
    private NpgsqlBatchCommand AppendChangesCommand(IReadOnlyList<ShardChange> changes)
    {
        // A replicated change keeps its writer's trace; a local one takes the current request's.
        var trace = System.Diagnostics.Activity.Current?.Id;
        var command = new NpgsqlBatchCommand(AppendChangesSql);
        command.Parameters.Add(Array(NpgsqlDbType.Integer, changes.Select(c => c.Bucket)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.UserId)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => ChangeKinds.ToText(c.Kind))));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.Collection)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.Key)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.CounterName)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.CounterRegion)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.Body)));
        command.Parameters.Add(Array(NpgsqlDbType.Boolean, changes.Select(c => c.Deleted)));
        command.Parameters.Add(Array(NpgsqlDbType.Bigint, changes.Select(c => c.Kind == ChangeKind.Counter ? c.Increments : (long?)null)));
        command.Parameters.Add(Array(NpgsqlDbType.Bigint, changes.Select(c => c.Kind == ChangeKind.Counter ? c.Decrements : (long?)null)));
        command.Parameters.Add(Array(NpgsqlDbType.Bigint, changes.Select(c => c.Version.Hlc.Value)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.Version.Origin)));
        command.Parameters.Add(Array(NpgsqlDbType.Bigint, changes.Select(c => c.PreviousVersion?.Hlc.Value)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.PreviousVersion?.Origin)));
        command.Parameters.Add(Array(NpgsqlDbType.Bigint, changes.Select(c => c.EraseEpoch?.Hlc.Value)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.EraseEpoch?.Origin)));
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.Origin)));
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = _time.GetUtcNow() });
        command.Parameters.Add(Array(NpgsqlDbType.Text, changes.Select(c => c.TraceParent ?? trace)));

        return command;

        static NpgsqlParameter<T[]> Array<T>(NpgsqlDbType type, IEnumerable<T> values) => new() { NpgsqlDbType = NpgsqlDbType.Array | type, TypedValue = [.. values] };
    }

    private ShardChange LocalChange(ChangeKind kind, string userId, DataVersion version) => new()
    {
        Kind = kind,
        Bucket = Buckets.Of(userId),
        UserId = userId,
        Version = version,
        Origin = RegionId,
    };

    /// <summary>A (hlc, origin) pair as Dapper reads it.</summary>
    private sealed record VersionRow(long VersionHlc, string VersionOrigin)
    {
        public DataVersion Version => new(new HlcTimestamp(VersionHlc), VersionOrigin);
    }
}
