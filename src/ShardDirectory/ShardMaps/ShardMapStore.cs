using Dapper;
using Geo.ShardDirectory.Grpc;
using Geo.ShardDirectory.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using CoreShardMap = Geo.Core.Placement.ShardMap;
using ShardMap = Geo.Contracts.Directory.ShardMap;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>
/// The region's shard map and the steps of online bucket moves. Every change runs in one transaction under one
/// advisory lock: the new epoch is written to <c>shard_maps</c> and <c>shard_map_history</c> and NOTIFYed (delivered at
/// commit), then published to this process's <see cref="ShardMapHub"/> — so an epoch is durable before anyone hears of it.
/// </summary>
internal sealed partial class ShardMapStore(
    NpgsqlDataSource dataSource,
    ShardMapHub hub,
    DirectorySite site,
    TimeProvider time,
    IOptions<DirectoryOptions> options,
    ILogger<ShardMapStore> logger)
{
    public const string ChangeChannel = "geo_shard_map";

    // "geo_map": serializes every map and move change of the directory database.
    private const long MapLockKey = 0x6765_6F5F_6D61_70;

    private const string MapColumns = """
        region AS Region, epoch AS Epoch, shards AS Shards, owner_index AS OwnerIndex, fenced_buckets AS FencedBuckets, updated_at AS UpdatedAt
        """;

    private const string MoveColumns = """
        move_id AS MoveId, region AS Region, buckets AS Buckets, source_shard AS SourceShard, target_shard AS TargetShard, phase AS Phase,
        begun_epoch AS BegunEpoch, fenced_epoch AS FencedEpoch, flipped_epoch AS FlippedEpoch, created_at AS CreatedAt, updated_at AS UpdatedAt
        """;

    private const string LockSql = "SELECT pg_advisory_xact_lock(@MapLockKey)";

    private const string GetMapSql = $"SELECT {MapColumns} FROM shard_maps WHERE region = @Region";

    private const string HistorySql = $"""
        SELECT region AS Region, epoch AS Epoch, shards AS Shards, owner_index AS OwnerIndex, fenced_buckets AS FencedBuckets, created_at AS UpdatedAt
        FROM shard_map_history WHERE region = @Region AND epoch > @After AND epoch <= @Upto ORDER BY epoch
        """;

    private const string ActiveMovesSql = $"""
        SELECT {MoveColumns} FROM shard_moves WHERE region = @Region AND phase IN ('begun', 'fenced', 'flipped') ORDER BY created_at, move_id
        """;

    private const string UpsertMapSql = """
        INSERT INTO shard_maps (region, epoch, shards, owner_index, fenced_buckets, updated_at)
        VALUES (@Region, @Epoch, @Shards, @OwnerIndex, @FencedBuckets, @UpdatedAt)
        ON CONFLICT (region) DO UPDATE
        SET epoch = EXCLUDED.epoch, shards = EXCLUDED.shards, owner_index = EXCLUDED.owner_index,
            fenced_buckets = EXCLUDED.fenced_buckets, updated_at = EXCLUDED.updated_at;
        INSERT INTO shard_map_history (region, epoch, shards, owner_index, fenced_buckets, reason, move_id, created_at)
        VALUES (@Region, @Epoch, @Shards, @OwnerIndex, @FencedBuckets, @Reason, @MoveId, @UpdatedAt);
        SELECT pg_notify('geo_shard_map', @Region || ':' || @Epoch);
        """;

    private readonly int _timeoutSeconds = (int)Math.Ceiling(options.Value.CommandTimeout.TotalSeconds);

    /// <summary>Writes the balanced first map of <paramref name="region"/> at epoch 1 unless the region has one.</summary>
    public async Task<bool> EnsureInitialAsync(string region, IEnumerable<string> shards, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { MapLockKey }, tx, ct));
        if (await connection.QuerySingleOrDefaultAsync<MapRow>(Command(GetMapSql, new { Region = region }, tx, ct)) is not null)
        {
            return false;
        }

        var row = MapRow.From(region, CoreShardMap.Initial(shards), [], time.GetUtcNow().UtcDateTime);
        await WriteMapAsync(connection, tx, row, "initial", null, ct);
        await tx.CommitAsync(ct);
        LogInitialMap(logger, region, row.Shards.Length);
        return true;
    }

    /// <summary>The region's current map with its active moves; null when the region has none.</summary>
    public async Task<ShardMap?> GetAsync(string region, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        var map = await connection.QuerySingleOrDefaultAsync<MapRow>(Command(GetMapSql, new { Region = region }, tx, ct));
        var moves = map is null ? [] : await connection.QueryAsync<MoveRow>(Command(ActiveMovesSql, new { Region = region }, tx, ct));
        await tx.CommitAsync(ct);
        return map?.ToProto(moves);
    }

    /// <summary>Re-reads the region's map and hands it to the hub; true when it was newer than what the hub held.</summary>
    public async Task<bool> RefreshAsync(string region, CancellationToken ct)
        => await GetAsync(region, ct) is { } map && hub.Publish(map);

    /// <summary>Maps of epochs in (<paramref name="after"/>, <paramref name="upto"/>] from the history, oldest first (no move lists).</summary>
    public async Task<IReadOnlyList<ShardMap>> HistoryAsync(string region, long after, long upto, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<MapRow>(Command(HistorySql, new { Region = region, After = after, Upto = upto }, null, ct));
        return [.. rows.Select(r => r.ToProto([]))];
    }

    private async Task<MapRow> LoadMapAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string region, CancellationToken ct)
    {
        var map = await connection.QuerySingleOrDefaultAsync<MapRow>(Command(GetMapSql, new { Region = region }, tx, ct));
        if (map is null)
        {
            RpcErrors.NotFound($"region '{region}' has no shard map in this directory (it serves '{site.RegionId}').");
        }

        return map;
    }

    private Task WriteMapAsync(NpgsqlConnection connection, NpgsqlTransaction tx, MapRow row, string reason, string? moveId, CancellationToken ct)
        => connection.ExecuteAsync(Command(UpsertMapSql, new
        {
            row.Region,
            row.Epoch,
            row.Shards,
            row.OwnerIndex,
            row.FencedBuckets,
            UpdatedAt = DateTime.SpecifyKind(row.UpdatedAt, DateTimeKind.Utc),
            Reason = reason,
            MoveId = moveId,
        }, tx, ct));

    private CommandDefinition Command(string sql, object? parameters, NpgsqlTransaction? tx, CancellationToken ct)
        => new(sql, parameters, tx, _timeoutSeconds, cancellationToken: ct);

    [LoggerMessage(EventId = EventIds.InitialMapCreated, Level = LogLevel.Information, Message = "Created the initial shard map of {RegionId} over {ShardCount} shards at epoch 1")]
    private static partial void LogInitialMap(ILogger logger, string regionId, int shardCount);

    [LoggerMessage(EventId = EventIds.MapChanged, Level = LogLevel.Information, Message = "Move {MoveId} of {RegionId} is {Phase}; map epoch {Epoch}")]
    private static partial void LogMoveStep(ILogger logger, string moveId, string regionId, string phase, long epoch);
}
