namespace Geo.Core.Placement;

/// <summary>
/// Plans the fewest bucket moves that bring a region's shards back into balance after shards are
/// added or removed, by bucket count or by measured per-bucket load.
/// </summary>
public static class RebalancePlanner
{
    /// <summary>Plans moves from <paramref name="map"/> onto exactly the shards in <paramref name="targetShards"/>.</summary>
    /// <param name="map">The current map.</param>
    /// <param name="targetShards">Shards that should own buckets afterwards (new ones included, removed ones left out).</param>
    /// <param name="bucketWeights">Load per bucket (e.g. rows); null weighs every bucket 1.</param>
    /// <param name="tolerance">
    /// With weights: stop once (heaviest − lightest) ≤ tolerance × mean load. Without: stop once bucket counts differ by ≤ 1.
    /// </param>
    public static IReadOnlyList<BucketMove> Plan(
        ShardMap map, IEnumerable<string> targetShards, IReadOnlyList<long>? bucketWeights = null, double tolerance = 0.02)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(targetShards);
        var targets = targetShards.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (targets.Length == 0)
        {
            throw new ArgumentException("At least one target shard is needed.", nameof(targetShards));
        }

        if (bucketWeights is not null && bucketWeights.Count != Buckets.Count)
        {
            throw new ArgumentException($"Weights are given per bucket ({Buckets.Count}).", nameof(bucketWeights));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(tolerance);
        long Weight(int b) => bucketWeights?[b] ?? 1;

        var owned = targets.ToDictionary(s => s, _ => new List<int>(), StringComparer.Ordinal);
        var load = targets.ToDictionary(s => s, _ => 0L, StringComparer.Ordinal);
        var orphans = new List<int>();
        for (var b = 0; b < Buckets.Count; b++)
        {
            var owner = map.ShardOf(b);
            if (owned.TryGetValue(owner, out var list))
            {
                list.Add(b);
                load[owner] += Weight(b);
            }
            else
            {
                orphans.Add(b);
            }
        }

        var moves = new List<BucketMove>();
        var destination = new Dictionary<int, string>();

        void Move(int bucket, string from, string to)
        {
            destination[bucket] = to;
            owned[to].Add(bucket);
            load[to] += Weight(bucket);
            if (owned.TryGetValue(from, out var fromList))
            {
                fromList.Remove(bucket);
                load[from] -= Weight(bucket);
            }
        }

        // Buckets of removed shards must move; heaviest first onto the lightest shard (LPT keeps the result balanced).
        foreach (var b in orphans.OrderByDescending(Weight).ThenBy(b => b))
        {
            Move(b, map.ShardOf(b), Lightest(load));
        }

        var total = load.Values.Sum();
        var mean = (double)total / targets.Length;
        for (var guard = 0; guard < Buckets.Count * 4; guard++)
        {
            var heavy = Heaviest(load);
            var light = Lightest(load);
            var gap = load[heavy] - load[light];
            var balanced = bucketWeights is null ? gap <= 1 : gap <= tolerance * mean;
            if (balanced)
            {
                break;
            }

            // The bucket whose move shrinks the gap most: weight closest to gap / 2, and strictly below the gap.
            var best = -1;
            long bestScore = -1;
            foreach (var b in owned[heavy])
            {
                var w = Weight(b);
                if (w <= 0 || w >= gap)
                {
                    continue;
                }

                var score = Math.Min(w, gap - w);
                if (score > bestScore || (score == bestScore && b < best))
                {
                    best = b;
                    bestScore = score;
                }
            }

            if (best < 0)
            {
                break;
            }

            Move(best, heavy, light);
        }

        foreach (var (bucket, to) in destination.OrderBy(kv => kv.Key))
        {
            var from = map.ShardOf(bucket);
            if (!string.Equals(from, to, StringComparison.Ordinal))
            {
                moves.Add(new BucketMove(bucket, from, to));
            }
        }

        return moves;
    }

    private static string Heaviest(Dictionary<string, long> load)
        => load.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).First().Key;

    private static string Lightest(Dictionary<string, long> load)
        => load.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).First().Key;
}
