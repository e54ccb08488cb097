using System.Collections.Frozen;
using System.Collections.Immutable;
using Geo.Core.Placement;
using CoreShardMap = Geo.Core.Placement.ShardMap;

namespace Geo.Contracts.Directory;

/// <summary>One region's shard map as a service uses it: bucket owners, the fenced buckets and the moves in flight.</summary>
public sealed class ShardMapSnapshot
{
    private ShardMapSnapshot(string region, CoreShardMap map, FrozenSet<int> fenced, IReadOnlyList<MoveState> moves)
    {
        Region = region;
        Map = map;
        FencedBuckets = fenced;
        Moves = moves;
    }

    /// <summary>The region the map belongs to.</summary>
    public string Region { get; }

    /// <summary>Grows on every change; compare before trusting a cached decision.</summary>
    public long Epoch => Map.Epoch;

    /// <summary>Bucket → shard.</summary>
    public CoreShardMap Map { get; }

    /// <summary>Buckets whose writes must wait: a move between fence and flip holds them.</summary>
    public IReadOnlySet<int> FencedBuckets { get; }

    /// <summary>Moves begun and not yet completed or cancelled (empty on maps replayed from history).</summary>
    public IReadOnlyList<MoveState> Moves { get; }

    /// <summary>True when writes to <paramref name="bucket"/> are fenced by a move.</summary>
    public bool IsFenced(int bucket) => FencedBuckets.Contains(bucket);

    /// <summary>The shard that owns <paramref name="userId"/>'s bucket.</summary>
    public string ShardOfUser(string userId) => Map.ShardOfUser(userId);

    /// <summary>Converts the wire form, checking that it is complete.</summary>
    /// <exception cref="InvalidDataException">The message does not hold 4096 valid owner indexes.</exception>
    public static ShardMapSnapshot FromProto(ShardMap message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.OwnerIndex.Count != Buckets.Count || message.Shards.Count == 0)
        {
            throw new InvalidDataException($"Shard map of '{message.Region}' epoch {message.Epoch} has {message.OwnerIndex.Count} owners for {message.Shards.Count} shards; expected {Buckets.Count}.");
        }

        var owners = ImmutableArray.CreateBuilder<string>(Buckets.Count);
        foreach (var index in message.OwnerIndex)
        {
            if (index < 0 || index >= message.Shards.Count)
            {
                throw new InvalidDataException($"Shard map of '{message.Region}' epoch {message.Epoch} names shard index {index} of {message.Shards.Count}.");
            }

            owners.Add(message.Shards[index]);
        }

        return new ShardMapSnapshot(message.Region, new CoreShardMap(message.Epoch, owners.MoveToImmutable()), message.FencedBuckets.ToFrozenSet(), [.. message.Moves]);
    }
}
