using System.Globalization;
using Geo.Core.Placement;

namespace Geo.Core.Tests.Placement;

public class PlacementTests
{
    private static readonly string[] Shards64 = Enumerable.Range(0, 64).Select(i => $"s-{i:D2}").ToArray();

    [Fact]
    public void Buckets_match_the_checked_in_golden_table()
    {
        var rows = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Placement", "golden-buckets.tsv"))
            .Where(l => !l.StartsWith('#'))
            .Select(l => l.Split('\t', 2))
            .ToArray();

        Assert.True(rows.Length >= 30);
        foreach (var row in rows)
        {
            Assert.Equal(int.Parse(row[0], CultureInfo.InvariantCulture), Buckets.Of(row[1]));
        }
    }

    [Fact]
    public void Initial_map_balances_bucket_counts_within_one()
    {
        foreach (var n in new[] { 1, 2, 3, 7, 64, 100 })
        {
            var counts = ShardMap.Initial(Enumerable.Range(0, n).Select(i => $"s{i}")).BucketCounts().Values.ToArray();
            Assert.Equal(n, counts.Length);
            Assert.True(counts.Max() - counts.Min() <= 1, $"{n} shards: {counts.Min()}..{counts.Max()}");
        }
    }

    [Fact]
    public void A_million_users_over_64_shards_differ_by_at_most_two_percent_after_load_balancing()
    {
        var random = new Random(20261122);
        var perBucket = new long[Buckets.Count];
        var bytes = new byte[16];
        for (var i = 0; i < 1_000_000; i++)
        {
            random.NextBytes(bytes);
            perBucket[Buckets.Of(new Guid(bytes).ToString())]++;
        }

        var map = ShardMap.Initial(Shards64);
        var before = Spread(map, perBucket);

        var moves = RebalancePlanner.Plan(map, Shards64, perBucket, tolerance: 0.02);
        var balanced = map.Apply(moves);
        var after = Spread(balanced, perBucket);

        TestContext.Current.TestOutputHelper?.WriteLine($"spread: count-balanced {before:P2}, after {moves.Count} load moves {after:P2}");
        Assert.True(after <= 0.02, $"user spread {after:P2} after {moves.Count} moves (count-balanced start: {before:P2})");
        // Rebalancing by load must stay a small correction of the count-balanced map, not a reshuffle.
        Assert.True(moves.Count <= Buckets.Count / 20, $"{moves.Count} moves");
        Assert.Equal(map.Epoch + 1, balanced.Epoch);
    }

    [Fact]
    public void Adding_a_65th_shard_moves_at_most_1_1_times_a_65th_of_the_buckets()
    {
        var map = ShardMap.Initial(Shards64);
        var moves = RebalancePlanner.Plan(map, [.. Shards64, "s-64"]);

        TestContext.Current.TestOutputHelper?.WriteLine($"65th shard: {moves.Count} of {Buckets.Count} buckets moved (bound {1.1 * Buckets.Count / 65:F1})");
        Assert.True(moves.Count <= 1.1 * Buckets.Count / 65, $"{moves.Count} moves");
        Assert.All(moves, m => Assert.Equal("s-64", m.To));
        var counts = map.Apply(moves).BucketCounts().Values.ToArray();
        Assert.True(counts.Max() - counts.Min() <= 1);
    }

    [Fact]
    public void Removing_a_shard_moves_only_its_buckets()
    {
        var map = ShardMap.Initial(["a", "b", "c", "d"]);
        var moves = RebalancePlanner.Plan(map, ["a", "b", "c"]);

        Assert.Equal(Buckets.Count / 4, moves.Count);
        Assert.All(moves, m => Assert.Equal("d", m.From));
        Assert.DoesNotContain("d", map.Apply(moves).Shards);
    }

    [Fact]
    public void A_balanced_map_needs_no_moves()
    {
        var map = ShardMap.Initial(["a", "b", "c"]);
        Assert.Empty(RebalancePlanner.Plan(map, ["a", "b", "c"]));
    }

    [Fact]
    public void Applying_a_stale_plan_is_refused()
    {
        var map = ShardMap.Initial(["a", "b"]);
        var moves = RebalancePlanner.Plan(map, ["a", "b", "c"]);
        var moved = map.Apply(moves);
        Assert.Throws<InvalidOperationException>(() => moved.Apply(moves));
    }

    private static double Spread(ShardMap map, long[] perBucket)
    {
        var load = new Dictionary<string, long>();
        for (var b = 0; b < Buckets.Count; b++)
        {
            load[map.ShardOf(b)] = load.GetValueOrDefault(map.ShardOf(b)) + perBucket[b];
        }

        return (double)(load.Values.Max() - load.Values.Min()) / load.Values.Average();
    }
}
