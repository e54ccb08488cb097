using Dapper;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // One hash over every row of a bucket in a locale-independent order (the columns are COLLATE "C").
    private const string BucketDigestSql = """
        SELECT
            (SELECT count(*) FROM documents WHERE bucket = @Bucket) AS Documents,
            (SELECT count(*) FROM counters WHERE bucket = @Bucket) AS Counters,
            md5(
                coalesce((SELECT string_agg(concat_ws(E'\x1f', user_id, collection, key, version_hlc, version_origin, deleted), E'\x1e' ORDER BY user_id, collection, key)
                          FROM documents WHERE bucket = @Bucket), '')
                || E'\x1d' ||
                coalesce((SELECT string_agg(concat_ws(E'\x1f', user_id, name, region, incr, decr), E'\x1e' ORDER BY user_id, name, region)
                          FROM counters WHERE bucket = @Bucket), '')
                || E'\x1d' ||
                coalesce((SELECT string_agg(concat_ws(E'\x1f', user_id, version_hlc, version_origin), E'\x1e' ORDER BY user_id)
                          FROM erased_users WHERE bucket = @Bucket), '')
            ) AS Hash
        """;

    private const string BucketRowCountsSql = """
        SELECT bucket AS Bucket, sum(n)::bigint AS Rows FROM (
            SELECT bucket, count(*) AS n FROM documents GROUP BY bucket
            UNION ALL
            SELECT bucket, count(*) FROM counters GROUP BY bucket
        ) t GROUP BY bucket
        """;

    /// <summary>
    /// A digest of one bucket for anti-entropy and move verification: two shards hold the same data for the bucket
    /// exactly when their digests are equal (document keys, versions and tombstones; counter components; erasures).
    /// </summary>
    public async Task<BucketDigest> BucketDigestAsync(int bucket, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var row = await connection.QuerySingleAsync<(long Documents, long Counters, string Hash)>(new CommandDefinition(BucketDigestSql, new { Bucket = bucket }, cancellationToken: ct));
        return new BucketDigest(bucket, row.Documents, row.Counters, row.Hash);
    }

    /// <summary>Rows (documents, tombstones included, plus counter components) per bucket, for buckets that hold any.</summary>
    public async Task<IReadOnlyDictionary<int, long>> BucketRowCountsAsync(CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var rows = await connection.QueryAsync<(int Bucket, long Rows)>(new CommandDefinition(BucketRowCountsSql, cancellationToken: ct));
        return rows.ToDictionary(r => r.Bucket, r => r.Rows);
    }
}

/// <summary>The digest of one bucket on one shard.</summary>
/// <param name="Bucket">The bucket.</param>
/// <param name="Documents">Document rows, tombstones included.</param>
/// <param name="Counters">Counter component rows.</param>
/// <param name="Hash">MD5 (hex) over every row's identity and version.</param>
public sealed record BucketDigest(int Bucket, long Documents, long Counters, string Hash);
