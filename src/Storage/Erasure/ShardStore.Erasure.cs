using Dapper;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // An erase is final: user ids are never reused (the directory refuses to create an erased id again), so once the
    // marker is here every later write of the user is refused, local or replicated, whatever its version. Nothing else
    // of the user stays: the marker (id, bucket, erase version, when) is the documented minimum (docs/security.md).
    private const string RecordEraseSql = """
        INSERT INTO erased_users (user_id, bucket, version_hlc, version_origin, erased_at)
        VALUES (@UserId, @Bucket, @VersionHlc, @VersionOrigin, @Now)
        ON CONFLICT (user_id) DO UPDATE SET version_hlc = excluded.version_hlc, version_origin = excluded.version_origin
        WHERE (erased_users.version_hlc, erased_users.version_origin) < (excluded.version_hlc, excluded.version_origin)
        """;

    private const string ErasedAmongSql = "SELECT user_id FROM erased_users WHERE user_id = ANY(@UserIds)";

    private const string EraseStateSql = """
        SELECT version_hlc AS VersionHlc, version_origin AS VersionOrigin, erased_at AS ErasedAt FROM erased_users WHERE user_id = @UserId
        """;

    /// <summary>
    /// The removal steps of an erase, in order, each one statement in the erase's transaction. Named so a test can switch
    /// one off (<see cref="SkippedEraseStepVariable"/>) and see the end-to-end scan find what it leaves behind.
    /// </summary>
    internal static readonly IReadOnlyList<(string Step, string Sql)> EraseSteps =
    [
        ("documents", "DELETE FROM documents WHERE user_id = @UserId"),
        ("counters", "DELETE FROM counters WHERE user_id = @UserId"),
        ("idempotency", "DELETE FROM idempotency WHERE user_id = @UserId"),
        ("conflicts", "DELETE FROM conflicts WHERE user_id = @UserId"),
        ("change_log", "DELETE FROM change_log WHERE user_id = @UserId"),
    ];

    /// <summary>
    /// Test-only negative control: an environment variable naming one step of <see cref="EraseSteps"/> that every erase
    /// of this process skips (a warning is logged at each erase). Never set it in a deployment.
    /// </summary>
    public const string SkippedEraseStepVariable = "GEO_TEST_SKIP_ERASE_STEP";

    private static readonly string? SkippedEraseStep = Environment.GetEnvironmentVariable(SkippedEraseStepVariable) is { Length: > 0 } step ? step : null;

    /// <summary>
    /// Erases a user on this shard at <paramref name="erase"/> (the version of the directory's erase marker): records the
    /// marker and deletes every row of the user — documents and tombstones, counters, idempotency records, conflict-log
    /// entries, change-log entries — in one transaction. When the erase originated in this region, one body-less
    /// <c>user_erase</c> change is appended so the peers' shards erase too (they also learn it from the directory).
    /// Idempotent: returns false, changing nothing, when the shard already holds the marker.
    /// </summary>
    public async Task<bool> EraseUserAsync(string userId, DataVersion erase, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockUserAsync(connection, tx, userId, exclusive: true, ct);
        if (await EraseMarkerAsync(connection, tx, userId, ct) != DataVersion.None)
        {
            return false;
        }

        await ApplyEraseAsync(connection, tx, userId, erase, ct);
        if (erase.Origin == RegionId)
        {
            await AppendChangesAsync(connection, tx, [LocalChange(ChangeKind.UserErase, userId, erase)], ct);
        }

        await tx.CommitAsync(ct);
        SignalCommitted();
        LogUserErased(userId, ShardId, erase.ToString());
        return true;
    }

    /// <summary>Erases a user at a fresh local version (tests and tools without a directory); returns that version.</summary>
    public async Task<DataVersion> EraseUserAsync(string userId, CancellationToken ct = default)
    {
        var version = NextVersion(null);
        await EraseUserAsync(userId, version, ct);
        return version;
    }

    /// <summary>Of <paramref name="userIds"/>, those this shard holds an erase marker for (one query).</summary>
    public async Task<IReadOnlySet<string>> ErasedAmongAsync(IReadOnlyCollection<string> userIds, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var ids = await connection.QueryAsync<string>(new CommandDefinition(ErasedAmongSql, new { UserIds = userIds.ToArray() }, cancellationToken: ct));
        return ids.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The user's erase marker on this shard: the erase version and when this shard completed it; null when none.</summary>
    public async Task<(DataVersion Version, DateTimeOffset ErasedAt)?> EraseStateAsync(string userId, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<EraseStateRow>(new CommandDefinition(EraseStateSql, new { UserId = userId }, cancellationToken: ct));
        return row is null ? null : (new DataVersion(new HlcTimestamp(row.VersionHlc), row.VersionOrigin), new DateTimeOffset(DateTime.SpecifyKind(row.ErasedAt, DateTimeKind.Utc)));
    }

    /// <summary>Throws <see cref="UserErasedException"/> when the shard holds the user's erase marker; the caller holds the user's lock.</summary>
    private async Task RequireNotErasedAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, CancellationToken ct)
    {
        if (await EraseMarkerAsync(connection, tx, userId, ct) != DataVersion.None)
        {
            throw new UserErasedException(ShardId);
        }
    }

    /// <summary>Records the marker and runs every removal step; the caller holds the user lock exclusively.</summary>
    private async Task ApplyEraseAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, DataVersion erase, CancellationToken ct)
    {
        var args = new
        {
            UserId = userId,
            Bucket = Buckets.Of(userId),
            VersionHlc = erase.Hlc.Value,
            VersionOrigin = erase.Origin,
            Now = _time.GetUtcNow(),
        };
        var sql = string.Join(";\n", [RecordEraseSql, .. EraseSteps.Where(s => s.Step != SkippedEraseStep).Select(s => s.Sql)]);
        await connection.ExecuteAsync(new CommandDefinition(sql, args, tx, cancellationToken: ct));
        if (SkippedEraseStep is { } skipped)
        {
            LogEraseStepSkipped(ShardId, skipped);
        }
    }

    private sealed record EraseStateRow(long VersionHlc, string VersionOrigin, DateTime ErasedAt);
}

/// <summary>The user was erased: the shard refuses every write for it (nothing was written).</summary>
public sealed class UserErasedException(string shardId)
    : InvalidOperationException($"The user was erased; shard {shardId} refuses its writes.")
{
    /// <summary>The shard that refused.</summary>
    public string ShardId { get; } = shardId;
}
