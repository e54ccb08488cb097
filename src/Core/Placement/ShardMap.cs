using System.Collections.Immutable;

namespace Geo.Core.Placement;

/// <summary>
/// One region's bucket → shard assignment. Immutable; every change produces a map with a larger <see cref="Epoch"/>.
/// </summary>
public sealed class ShardMap
{
    private readonly ImmutableArray<string> _owners;

    /// <param name="epoch">Grows on every change; writes are fenced by it.</param>
    /// <param name="owners">Exactly <see cref="Buckets.Count"/> shard ids, indexed by bucket.</param>
    public ShardMap(long epoch, ImmutableArray<string> owners)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (owners.IsDefault || owners.Length != Buckets.Count)
        {
            throw new ArgumentException($"A shard map assigns exactly {Buckets.Count} buckets.", nameof(owners));
        }

        if (owners.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Every bucket needs an owning shard.", nameof(owners));
        }

        Epoch = epoch;
        _owners = owners;
    }

    /// <summary>Version of this map; larger is newer.</summary>
    public long Epoch { get; }

    /// <summary>Owner of each bucket, indexed by bucket.</summary>
    public ImmutableArray<string> Owners => _owners;

    /// <summary>The shards that own at least one bucket, sorted.</summary>
    public IReadOnlyList<string> Shards => _owners.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The shard that owns <paramref name="bucket"/>.</summary>
    public string ShardOf(int bucket) => _owners[bucket];

    /// <summary>The shard that owns <paramref name="userId"/>'s bucket.</summary>
    public string ShardOfUser(string userId) => _owners[Buckets.Of(userId)];

    /// <summary>Buckets owned by each shard.</summary>
    public IReadOnlyDictionary<string, int> BucketCounts()
        => _owners.GroupBy(o => o, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>
    /// A balanced first assignment: bucket <c>b</c> goes to shard <c>b mod n</c> of the sorted ids,
    /// so bucket counts differ by at most one.
    /// </summary>
    public static ShardMap Initial(IEnumerable<string> shardIds, long epoch = 1)
    {
        ArgumentNullException.ThrowIfNull(shardIds);
        var shards = shardIds.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (shards.Length == 0)
        {
            throw new ArgumentException("At least one shard is needed.", nameof(shardIds));
        }

        var owners = ImmutableArray.CreateBuilder<string>(Buckets.Count);
        for (var b = 0; b < Buckets.Count; b++)
        {
            owners.Add(shards[b % shards.Length]);
        }

        return new ShardMap(epoch, owners.MoveToImmutable());
    }

    /// <summary>The map after <paramref name="moves"/>, at <see cref="Epoch"/> + 1.</summary>
    public ShardMap Apply(IEnumerable<BucketMove> moves)
    {
        ArgumentNullException.ThrowIfNull(moves);
        var owners = _owners.ToBuilder();
        foreach (var move in moves)
        {
            if (!string.Equals(owners[move.Bucket], move.From, StringComparison.Ordinal))
            {
                throw new InvalidOperationException(
                    $"Bucket {move.Bucket} is owned by '{owners[move.Bucket]}', not '{move.From}'; the plan is stale.");
            }

            owners[move.Bucket] = move.To;
        }

        return new ShardMap(Epoch + 1, owners.MoveToImmutable());
    }
}

/// <summary>Moving one bucket from one shard to another.</summary>
public readonly record struct BucketMove(int Bucket, string From, string To);
