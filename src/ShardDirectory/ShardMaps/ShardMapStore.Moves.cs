using Dapper;
using Geo.Contracts.Directory;
using Geo.Core.Placement;
using Geo.ShardDirectory.Grpc;

namespace Geo.ShardDirectory.ShardMaps;

// The steps of online bucket moves (docs/architecture.md §9): begin, fence, flip, complete, cancel, each checked
// against the move's phase and the map's epoch, in the map's transaction under the map lock.
internal sealed partial class ShardMapStore
{
    private const string GetMoveSql = $"SELECT {MoveColumns} FROM shard_moves WHERE move_id = @MoveId";


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
}

/// <summary>The steps of a move after it began.</summary>
internal enum MoveStep
{
    Fence,
    Flip,
    Complete,
    Cancel,
}
