using Dapper;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // Documents older than the erase become tombstones at the erase version (so every region converges on the same
    // rows); counters restart from zero; stored responses and conflict copies go too, as they hold the user's data.
    private const string ApplyEraseSql = """
        INSERT INTO erased_users (user_id, bucket, version_hlc, version_origin, erased_at)
        VALUES (@UserId, @Bucket, @VersionHlc, @VersionOrigin, @Now)
        ON CONFLICT (user_id) DO UPDATE SET version_hlc = excluded.version_hlc, version_origin = excluded.version_origin, erased_at = excluded.erased_at;
        UPDATE documents
           SET body = NULL, deleted = true, prev_version_hlc = version_hlc, prev_version_origin = version_origin,
               version_hlc = @VersionHlc, version_origin = @VersionOrigin, updated_at = @Now
         WHERE user_id = @UserId AND (version_hlc < @VersionHlc OR (version_hlc = @VersionHlc AND version_origin < @VersionOrigin));
        DELETE FROM counters WHERE user_id = @UserId;
        DELETE FROM idempotency WHERE user_id = @UserId AND state = 'done';
        DELETE FROM conflicts WHERE user_id = @UserId;
        """;

    /// <summary>
    /// Erases a user: tombstones every document, resets every counter and records the erase with a version that
    /// replicates, so older writes arriving later from any region are refused. Returns the erase version.
    /// </summary>
    /// <param name="userId">The user to erase.</param>
    /// <param name="idempotency">When set, the response is stored with the erase, atomically.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<DataVersion> EraseUserAsync(string userId, IdempotencyContext<DataVersion>? idempotency = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockUserAsync(connection, tx, userId, exclusive: true, ct);
        var version = NextVersion(await EraseMarkerAsync(connection, tx, userId, ct));
        await ApplyEraseAsync(connection, tx, userId, version, ct);
        await AppendChangesAsync(connection, tx, [LocalChange(ChangeKind.UserErase, userId, version)], ct);
        await CompleteIdempotencyAsync(connection, tx, userId, idempotency, version, ct);
        await tx.CommitAsync(ct);
        SignalCommitted();
        LogUserErased(userId, ShardId, version.ToString());
        return version;
    }

    /// <summary>Makes <paramref name="erase"/> the user's erase version; the caller holds the user lock exclusively and checked it is newer.</summary>
    private Task ApplyEraseAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, DataVersion erase, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition(ApplyEraseSql, new
        {
            UserId = userId,
            Bucket = Buckets.Of(userId),
            VersionHlc = erase.Hlc.Value,
            VersionOrigin = erase.Origin,
            Now = _time.GetUtcNow(),
        }, tx, cancellationToken: ct));
}
