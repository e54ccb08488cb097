using Geo.Contracts.Directory;
using CoreShardMap = Geo.Core.Placement.ShardMap;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>One row of <c>shard_maps</c> or <c>shard_map_history</c>: <c>Shards[OwnerIndex[bucket]]</c> owns the bucket.</summary>
internal sealed record MapRow(string Region, long Epoch, string[] Shards, int[] OwnerIndex, int[] FencedBuckets, DateTime UpdatedAt)
{
    public static MapRow From(string region, CoreShardMap map, IEnumerable<int> fenced, DateTime updatedAt)
    {
        var shards = map.Shards.ToArray();
        var index = shards.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i, StringComparer.Ordinal);
        return new MapRow(region, map.Epoch, shards, [.. map.Owners.Select(o => index[o])], [.. fenced.Distinct().Order()], updatedAt);
    }

    public CoreShardMap ToCore() => new(Epoch, [.. OwnerIndex.Select(i => Shards[i])]);

    public ShardMap ToProto(IEnumerable<MoveRow> activeMoves)
    {
        var message = new ShardMap
        {
            Region = Region,
            Epoch = Epoch,
            UpdatedAtUnixMs = MoveRow.UnixMs(UpdatedAt),
        };
        message.Shards.Add(Shards);
        message.OwnerIndex.Add(OwnerIndex);
        message.FencedBuckets.Add(FencedBuckets);
        message.Moves.Add(activeMoves.Select(m => m.ToProto()));
        return message;
    }
}

/// <summary>One row of <c>shard_moves</c>.</summary>
internal sealed record MoveRow(
    string MoveId,
    string Region,
    int[] Buckets,
    string SourceShard,
    string TargetShard,
    string Phase,
    long BegunEpoch,
    long? FencedEpoch,
    long? FlippedEpoch,
    DateTime CreatedAt,
    DateTime UpdatedAt)
{
    public const string Begun = "begun";
    public const string Fenced = "fenced";
    public const string Flipped = "flipped";
    public const string Completed = "completed";
    public const string Cancelled = "cancelled";

    public MoveState ToProto()
    {
        var state = new MoveState
        {
            MoveId = MoveId,
            Region = Region,
            SourceShard = SourceShard,
            TargetShard = TargetShard,
            Phase = Phase switch
            {
                Begun => MovePhase.Begun,
                Fenced => MovePhase.Fenced,
                Flipped => MovePhase.Flipped,
                Completed => MovePhase.Completed,
                Cancelled => MovePhase.Cancelled,
                _ => MovePhase.Unspecified,
            },
            BegunEpoch = BegunEpoch,
            FencedEpoch = FencedEpoch ?? 0,
            FlippedEpoch = FlippedEpoch ?? 0,
            CreatedAtUnixMs = UnixMs(CreatedAt),
            UpdatedAtUnixMs = UnixMs(UpdatedAt),
        };
        state.Buckets.Add(Buckets);
        return state;
    }

    public static long UnixMs(DateTime utc) => new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)).ToUnixTimeMilliseconds();
}
