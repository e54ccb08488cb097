using Dapper;
using Npgsql;

namespace Geo.Storage.Reports;

/// <summary>
/// Read-only reports on a region's directory database (schema in <c>Directory/Migrations/</c> of this assembly) for geoctl's status
/// page: the map's buckets per shard and the latest moves. The ShardDirectory service writes these tables; the caller
/// opens and owns the connection.
/// </summary>
public static class DirectoryReport
{
    private const string MapSql = """
        SELECT m.epoch AS Epoch, cardinality(m.fenced_buckets) AS Fenced, m.shards[o.idx + 1] AS Shard, count(*) AS Buckets
        FROM shard_maps m CROSS JOIN LATERAL unnest(m.owner_index) AS o(idx) WHERE m.region = @Region GROUP BY 1, 2, 3 ORDER BY 3
        """;

    // Moves in flight first, then the most recently changed.
    private const string MovesSql = """
        SELECT move_id AS MoveId, phase AS Phase, source_shard AS Source, target_shard AS Target, cardinality(buckets) AS Buckets, updated_at AS UpdatedAt FROM shard_moves
        WHERE region = @Region ORDER BY (phase IN ('begun', 'fenced', 'flipped')) DESC, updated_at DESC LIMIT @Limit
        """;

    /// <summary>The region's current map: epoch, buckets per shard, fenced buckets; null when the region has no map yet.</summary>
    public static async Task<ShardMapSummary?> ShardMapAsync(NpgsqlConnection connection, string region, CancellationToken ct)
    {
        var rows = (await connection.QueryAsync<(long Epoch, int? Fenced, string Shard, long Buckets)>(
            new CommandDefinition(MapSql, new { Region = region }, cancellationToken: ct))).ToList();
        if (rows.Count == 0)
        {
            return null;
        }

        var perShard = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            perShard[row.Shard] = row.Buckets;
        }

        return new ShardMapSummary(rows[^1].Epoch, perShard, rows[^1].Fenced ?? 0);
    }

    /// <summary>At most <paramref name="limit"/> of the region's moves: those in flight first, then the latest.</summary>
    public static async Task<IReadOnlyList<MoveSummary>> MovesAsync(NpgsqlConnection connection, string region, int limit, CancellationToken ct) =>
        [.. await connection.QueryAsync<MoveSummary>(new CommandDefinition(MovesSql, new { Region = region, Limit = limit }, cancellationToken: ct))];
}

/// <summary>A region's shard map at a glance.</summary>
public sealed record ShardMapSummary(long Epoch, IReadOnlyDictionary<string, long> BucketsPerShard, int Fenced);

/// <summary>One move record of the directory.</summary>
public sealed record MoveSummary(string MoveId, string Phase, string Source, string Target, int Buckets, DateTime UpdatedAt);
