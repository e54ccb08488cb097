using System.Globalization;
using System.Text.Json;
using Geo.Cli.CommandLine;
using Geo.Contracts.Directory;
using Geo.Core.Placement;

namespace Geo.Cli.Shards;

/// <summary>The plan file of <c>geoctl shards plan</c>: the region, the map epoch it was planned at, and the moves.</summary>
internal sealed record MovePlan(string Region, long Epoch, DateTimeOffset CreatedAt, IReadOnlyList<string> Shards, long TotalRows, IReadOnlyList<PlannedMove> Moves)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// The fewest bucket moves that balance the region over <paramref name="shards"/>, weighted by rows per bucket (plus
    /// one, so that empty buckets spread too), grouped into moves of at most <paramref name="maxBuckets"/> buckets with
    /// one source and one target each.
    /// </summary>
    public static MovePlan Create(ShardMapSnapshot map, IReadOnlyList<string> shards, IReadOnlyList<long> rowsPerBucket, int maxBuckets, DateTimeOffset now)
    {
        var weights = rowsPerBucket.Select(r => r + 1).ToArray();
        var moves = RebalancePlanner.Plan(map.Map, shards, weights);
        var planned = new List<PlannedMove>();
        foreach (var group in moves.GroupBy(m => (m.From, m.To)).OrderBy(g => g.Key.From, StringComparer.Ordinal).ThenBy(g => g.Key.To, StringComparer.Ordinal))
        {
            var buckets = group.Select(m => m.Bucket).Order().ToArray();
            for (var i = 0; i < buckets.Length; i += maxBuckets)
            {
                var chunk = buckets[i..Math.Min(buckets.Length, i + maxBuckets)];
                var id = string.Create(CultureInfo.InvariantCulture, $"{map.Region}-e{map.Epoch}-{group.Key.From}-to-{group.Key.To}-{i / maxBuckets}");
                planned.Add(new PlannedMove(id, group.Key.From, group.Key.To, chunk, chunk.Sum(b => rowsPerBucket[b])));
            }
        }

        return new MovePlan(map.Region, map.Epoch, now, shards, rowsPerBucket.Sum(), planned);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static MovePlan Load(string path)
    {
        if (!File.Exists(path))
        {
            throw GeoCliException.NotFound($"--plan: file '{path}' does not exist; write one with 'geoctl shards plan --out FILE'.");
        }

        try
        {
            var plan = JsonSerializer.Deserialize<MovePlan>(File.ReadAllText(path), Json);
            return plan is { Region.Length: > 0, Moves: not null }
                ? plan
                : throw GeoCliException.Usage($"--plan: '{path}' is not a plan file (no region or moves).");
        }
        catch (JsonException e)
        {
            throw GeoCliException.Usage($"--plan: '{path}' is not valid JSON: {e.Message}");
        }
    }
}

/// <summary>One move of a plan: buckets from one shard to another, under an id that makes rerunning it resume it.</summary>
internal sealed record PlannedMove(string MoveId, string From, string To, int[] Buckets, long Rows);
