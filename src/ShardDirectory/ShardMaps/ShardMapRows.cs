using Geo.Contracts.Directory;
using CoreShardMap = Geo.Core.Placement.ShardMap;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>One row of <c>shard_maps</c> or <c>shard_map_history</c>: <c>Shards[OwnerIndex[bucket]]</c> owns the bucket.</summary>
/// <remarks>Settable properties rather than a positional record: Dapper cannot bind array columns to constructor parameters.</remarks>
internal sealed record MapRow
{
    public string Region { get; init; } = string.Empty;

    public long Epoch { get; init; }

    public string[] Shards { get; init; } = [];

    public int[] OwnerIndex { get; init; } = [];

    public int[] FencedBuckets { get; init; } = [];

    public DateTime UpdatedAt { get; init; }

    public static MapRow From(string region, CoreShardMap map, IEnumerable<int> fenced, DateTime updatedAt)
    {
        var shards = map.Shards.ToArray();
        var index = shards.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i, StringComparer.Ordinal);
        return new MapRow
        {
            Region = region,
            Epoch = map.Epoch,
            Shards = shards,
            OwnerIndex = [.. map.Owners.Select(o => index[o])],
            FencedBuckets = [.. fenced.Distinct().Order()],
            UpdatedAt = updatedAt,
        };
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
internal sealed record MoveRow
{
    public const string Begun = "begun";
    public const string Fenced = "fenced";
    public const string Flipped = "flipped";
    public const string Completed = "completed";
    public const string Cancelled = "cancelled";

    public string MoveId { get; init; } = string.Empty;

    public string Region { get; init; } = string.Empty;

    public int[] Buckets { get; init; } = [];

    public string SourceShard { get; init; } = string.Empty;

    public string TargetShard { get; init; } = string.Empty;

    public string Phase { get; init; } = string.Empty;

    public long BegunEpoch { get; init; }

    public long? FencedEpoch { get; init; }

    public long? FlippedEpoch { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime UpdatedAt { get; init; }

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
