using Dapper;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // Class id of the per-bucket fence locks (two-int advisory form, its own key space): writers take them shared,
    // the mover exclusively while it inserts the fence rows, so a fence never commits under an in-flight write.
    private const int FenceLockClass = 0x6766;

    // Locks in bucket order (one statement), so a replicated batch and the mover cannot deadlock. Returns a count so the
    // statement has a result; the fence is read by the next statement, whose snapshot is taken after the locks.
    private const string LockBucketsSharedSql = """
        SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared(@FenceLockClass, b) FROM (SELECT DISTINCT unnest(@Buckets::int[]) AS b ORDER BY 1) AS t) AS l;
        SELECT bucket AS Bucket, epoch AS Epoch, move_id AS MoveId FROM bucket_fences WHERE bucket = ANY(@Buckets::int[]) ORDER BY bucket LIMIT 1;
        """;

    private const string FenceSql = """
        SELECT count(*) FROM (SELECT pg_advisory_xact_lock(@FenceLockClass, b) FROM (SELECT DISTINCT unnest(@Buckets::int[]) AS b ORDER BY 1) AS t) AS l;
        INSERT INTO bucket_fences (bucket, move_id, epoch, fenced_at)
        SELECT b, @MoveId, @Epoch, @Now FROM unnest(@Buckets::int[]) AS b
        ON CONFLICT (bucket) DO UPDATE SET move_id = excluded.move_id, epoch = excluded.epoch, fenced_at = excluded.fenced_at;
        """;

    private const string UnfenceSql = "DELETE FROM bucket_fences WHERE bucket = ANY(@Buckets::int[])";

    private const string ListFencesSql = "SELECT bucket AS Bucket, epoch AS Epoch, move_id AS MoveId FROM bucket_fences ORDER BY bucket";

    /// <summary>
    /// Fences <paramref name="buckets"/> on this shard: waits for every in-flight write to them to finish, then makes
    /// every later local write and replicated apply throw <see cref="BucketFencedException"/>. Idempotent.
    /// </summary>
    /// <param name="moveId">The move that fences them (recorded with the fence).</param>
    /// <param name="epoch">The map epoch of the fence.</param>
    /// <param name="buckets">The buckets leaving this shard.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task FenceBucketsAsync(string moveId, long epoch, IReadOnlyCollection<int> buckets, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(moveId);
        ArgumentNullException.ThrowIfNull(buckets);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(FenceSql,
            new { FenceLockClass, Buckets = buckets.ToArray(), MoveId = moveId, Epoch = epoch, Now = _time.GetUtcNow() }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
    }

    /// <summary>Removes the fences of <paramref name="buckets"/> (a cancelled move, or a move onto this shard); returns how many there were.</summary>
    public async Task<int> UnfenceBucketsAsync(IReadOnlyCollection<int> buckets, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(UnfenceSql, new { Buckets = buckets.ToArray() }, cancellationToken: ct));
    }

    /// <summary>The buckets fenced on this shard.</summary>
    public async Task<IReadOnlyList<BucketFence>> FencedBucketsAsync(CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return [.. await connection.QueryAsync<BucketFence>(new CommandDefinition(ListFencesSql, cancellationToken: ct))];
    }

    private async Task RequireUnfencedAsync(NpgsqlConnection connection, NpgsqlTransaction tx, int[] buckets, CancellationToken ct)
    {
        if (buckets.Length == 0)
        {
            return;
        }

        using var results = await connection.QueryMultipleAsync(new CommandDefinition(LockBucketsSharedSql, new { FenceLockClass, Buckets = buckets }, tx, cancellationToken: ct));
        await results.ReadSingleAsync<long>();
        if (await results.ReadSingleOrDefaultAsync<BucketFence>() is { } fence)
        {
            throw new BucketFencedException(ShardId, fence.Bucket, fence.Epoch, fence.MoveId);
        }
    }
}

/// <summary>A fence on one bucket of a shard.</summary>
/// <param name="Bucket">The bucket.</param>
/// <param name="Epoch">The map epoch at which the move fenced it.</param>
/// <param name="MoveId">The move.</param>
public sealed record BucketFence(int Bucket, long Epoch, string MoveId);

/// <summary>
/// A write reached a shard on which a move has fenced the bucket: the bucket is moving (or has moved) to another
/// shard. Nothing was written. Wait for a shard map newer than <see cref="Epoch"/> and write to the new owner.
/// </summary>
public sealed class BucketFencedException : Exception
{
    public BucketFencedException(string shardId, int bucket, long epoch, string moveId)
        : base($"Bucket {bucket} is fenced on shard '{shardId}' by move '{moveId}' (map epoch {epoch}); write to the owner in a newer map.")
    {
        ShardId = shardId;
        Bucket = bucket;
        Epoch = epoch;
        MoveId = moveId;
    }

    public BucketFencedException()
        : this("?", -1, 0, "?")
    {
    }

    public BucketFencedException(string message)
        : base(message)
    {
        ShardId = "?";
        MoveId = "?";
    }

    public BucketFencedException(string message, Exception innerException)
        : base(message, innerException)
    {
        ShardId = "?";
        MoveId = "?";
    }

    /// <summary>The shard that refused the write.</summary>
    public string ShardId { get; }

    /// <summary>The fenced bucket.</summary>
    public int Bucket { get; }

    /// <summary>The map epoch at which the bucket was fenced; the write must use a map newer than this.</summary>
    public long Epoch { get; }

    /// <summary>The move holding the fence.</summary>
    public string MoveId { get; }
}
