using Dapper;
using Geo.Contracts.Directory;
using Geo.Core.Placement;
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

    private const string GetMoveSql = $"SELECT {MoveColumns} FROM shard_moves WHERE move_id = @MoveId";

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

    private const string InsertMoveSql = $"""
        INSERT INTO shard_moves (move_id, region, buckets, source_shard, target_shard, phase, begun_epoch, created_at, updated_at)
        VALUES (@MoveId, @Region, @Buckets, @SourceShard, @TargetShard, 'begun', @BegunEpoch, @Now, @Now)
        RETURNING {MoveColumns}
        """;

    private const string UpdateMoveSql = $"""
        UPDATE shard_moves SET phase = @Phase, fenced_epoch = @FencedEpoch, flipped_epoch = @FlippedEpoch, updated_at = @Now
        WHERE move_id = @MoveId
        RETURNING {MoveColumns}
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

    public async Task<MoveResponse> GetMoveAsync(string moveId, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        var move = await connection.QuerySingleOrDefaultAsync<MoveRow>(Command(GetMoveSql, new { MoveId = moveId }, null, ct));
        if (move is null)
        {
            RpcErrors.NotFound($"move '{moveId}' is unknown.");
        }

        var map = await connection.QuerySingleAsync<MapRow>(Command(GetMapSql, new { move.Region }, null, ct));
        return Response(move, map.Epoch, changed: false);
    }

    /// <summary>Records a move of <paramref name="buckets"/> (all owned by one shard) to <paramref name="target"/>; no map change.</summary>
    public async Task<MoveResponse> BeginAsync(string region, string moveId, long expectedEpoch, int[] buckets, string target, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { MapLockKey }, tx, ct));
        var map = await LoadMapAsync(connection, tx, region, ct);
        var existing = await connection.QuerySingleOrDefaultAsync<MoveRow>(Command(GetMoveSql, new { MoveId = moveId }, tx, ct));
        if (existing is not null)
        {
            if (existing.Region != region || existing.TargetShard != target || !existing.Buckets.SequenceEqual(buckets))
            {
                RpcErrors.AlreadyExists($"move '{moveId}' already exists with other buckets, target or region; choose another move_id.");
            }

            return Response(existing, map.Epoch, changed: false);
        }

        RequireEpoch(expectedEpoch, map.Epoch);
        var owners = map.ToCore();
        var sources = buckets.Select(owners.ShardOf).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (sources.Length != 1)
        {
            RpcErrors.FailedPrecondition($"buckets: owned by several shards ({string.Join(", ", sources)}); begin one move per source shard.");
        }

        if (sources[0] == target)
        {
            RpcErrors.FailedPrecondition($"target_shard: '{target}' already owns these buckets.");
        }

        var active = await connection.QueryAsync<MoveRow>(Command(ActiveMovesSql, new { Region = region }, tx, ct));
        foreach (var other in active)
        {
            var overlap = other.Buckets.Intersect(buckets).Order().ToArray();
            if (overlap.Length > 0)
            {
                RpcErrors.FailedPrecondition($"buckets: {string.Join(", ", overlap.Take(10))} already moving in move '{other.MoveId}' ({other.Phase}); complete or cancel it first.");
            }
        }

        var move = await connection.QuerySingleAsync<MoveRow>(Command(InsertMoveSql, new
        {
            MoveId = moveId,
            Region = region,
            Buckets = buckets,
            SourceShard = sources[0],
            TargetShard = target,
            BegunEpoch = map.Epoch,
            Now = time.GetUtcNow(),
        }, tx, ct));
        await tx.CommitAsync(ct);
        LogMoveStep(logger, moveId, region, MoveRow.Begun, map.Epoch);
        return Response(move, map.Epoch, changed: true);
    }

    /// <summary>Runs one step of a move: checks it, applies it and its map change (if any), and announces the new epoch.</summary>
    public async Task<MoveResponse> StepAsync(MoveStep step, string moveId, long expectedEpoch, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { MapLockKey }, tx, ct));
        var move = await connection.QuerySingleOrDefaultAsync<MoveRow>(Command(GetMoveSql, new { MoveId = moveId }, tx, ct));
        if (move is null)
        {
            RpcErrors.NotFound($"move '{moveId}' is unknown; begin it first.");
        }

        var map = await LoadMapAsync(connection, tx, move.Region, ct);
        var (done, allowed, next) = Transition(step, move.Phase);
        if (done)
        {
            return Response(move, map.Epoch, changed: false);
        }

        if (!allowed)
        {
            RpcErrors.FailedPrecondition($"move '{moveId}' is {move.Phase}; {StepName(step)} {Requirement(step)}.");
        }

        RequireEpoch(expectedEpoch, map.Epoch);
        var fenced = map.FencedBuckets.ToHashSet();
        var epoch = map.Epoch;
        MapRow? changedMap = null;
        var now = time.GetUtcNow();
        switch (step)
        {
            case MoveStep.Fence:
                fenced.UnionWith(move.Buckets);
                changedMap = map with { Epoch = epoch + 1, FencedBuckets = [.. fenced.Order()], UpdatedAt = now.UtcDateTime };
                break;
            case MoveStep.Flip:
                var flipped = map.ToCore().Apply(move.Buckets.Select(b => new BucketMove(b, move.SourceShard, move.TargetShard)));
                fenced.ExceptWith(move.Buckets);
                changedMap = MapRow.From(map.Region, flipped, fenced, now.UtcDateTime);
                break;
            case MoveStep.Cancel when move.Phase == MoveRow.Fenced:
                fenced.ExceptWith(move.Buckets);
                changedMap = map with { Epoch = epoch + 1, FencedBuckets = [.. fenced.Order()], UpdatedAt = now.UtcDateTime };
                break;
            default:
                break;
        }

        if (changedMap is not null)
        {
            await WriteMapAsync(connection, tx, changedMap, StepName(step), moveId, ct);
            epoch = changedMap.Epoch;
        }

        var updated = await connection.QuerySingleAsync<MoveRow>(Command(UpdateMoveSql, new
        {
            MoveId = moveId,
            Phase = next,
            FencedEpoch = step == MoveStep.Fence ? epoch : move.FencedEpoch,
            FlippedEpoch = step == MoveStep.Flip ? epoch : move.FlippedEpoch,
            Now = now,
        }, tx, ct));
        await tx.CommitAsync(ct);
        LogMoveStep(logger, moveId, move.Region, next, epoch);
        if (changedMap is not null)
        {
            await RefreshAsync(move.Region, ct);
        }

        return Response(updated, epoch, changed: true);
    }

    private static (bool Done, bool Allowed, string Next) Transition(MoveStep step, string phase) => step switch
    {
        MoveStep.Fence => (phase is MoveRow.Fenced or MoveRow.Flipped or MoveRow.Completed, phase == MoveRow.Begun, MoveRow.Fenced),
        MoveStep.Flip => (phase is MoveRow.Flipped or MoveRow.Completed, phase == MoveRow.Fenced, MoveRow.Flipped),
        MoveStep.Complete => (phase == MoveRow.Completed, phase == MoveRow.Flipped, MoveRow.Completed),
        MoveStep.Cancel => (phase == MoveRow.Cancelled, phase is MoveRow.Begun or MoveRow.Fenced, MoveRow.Cancelled),
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };

    private static string StepName(MoveStep step) => step switch
    {
        MoveStep.Fence => "fence",
        MoveStep.Flip => "flip",
        MoveStep.Complete => "complete",
        _ => "cancel",
    };

    private static string Requirement(MoveStep step) => step switch
    {
        MoveStep.Fence => "needs a begun move",
        MoveStep.Flip => "needs a fenced move (fence it first)",
        MoveStep.Complete => "needs a flipped move",
        _ => "is only possible before the flip; move the buckets back with a new move instead",
    };

    private static void RequireEpoch(long expected, long current)
    {
        if (expected != current)
        {
            RpcErrors.StaleEpoch(expected, current);
        }
    }

    private static MoveResponse Response(MoveRow move, long epoch, bool changed) => new() { Move = move.ToProto(), Epoch = epoch, Changed = changed };

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

/// <summary>The steps of a move after it began.</summary>
internal enum MoveStep
{
    Fence,
    Flip,
    Complete,
    Cancel,
}
