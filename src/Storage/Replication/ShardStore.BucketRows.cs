using Dapper;
using Geo.Core.Clock;
using Geo.Core.Versioning;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    private const string BucketErasuresSql = """
        SELECT user_id AS UserId, version_hlc AS VersionHlc, version_origin AS VersionOrigin
        FROM erased_users WHERE bucket = @Bucket ORDER BY user_id
        """;

    private const string BucketDocumentsSql = """
        SELECT user_id AS UserId, collection AS Collection, key AS Key, body::text AS Body, deleted AS Deleted,
               version_hlc AS VersionHlc, version_origin AS VersionOrigin, prev_version_hlc AS PrevHlc, prev_version_origin AS PrevOrigin
        FROM documents WHERE bucket = @Bucket ORDER BY user_id, collection, key
        """;

    private const string BucketCountersSql = """
        SELECT c.user_id AS UserId, c.name AS Name, c.region AS Region, c.incr AS Increments, c.decr AS Decrements,
               c.version_hlc AS VersionHlc, c.version_origin AS VersionOrigin, e.version_hlc AS EraseHlc, e.version_origin AS EraseOrigin
        FROM counters c LEFT JOIN erased_users e ON e.user_id = c.user_id
        WHERE c.bucket = @Bucket ORDER BY c.user_id, c.name, c.region
        """;

    private const string CountChangesSql = "SELECT count(*) FROM change_log WHERE seq > @AfterSeq AND origin = @Origin";

    /// <summary>
    /// Every row of <paramref name="bucket"/> as changes that <see cref="ApplyRemoteAsync"/> accepts (erasures first,
    /// then documents with tombstones, then counter components with the erase epoch they count from): anti-entropy
    /// repairs a divergent bucket by applying a peer's rows, and newer versions win as in replication.
    /// </summary>
    public async Task<IReadOnlyList<ShardChange>> ReadBucketRowsAsync(int bucket, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var changes = new List<ShardChange>();
        foreach (var e in await connection.QueryAsync<(string UserId, long VersionHlc, string VersionOrigin)>(new CommandDefinition(BucketErasuresSql, new { Bucket = bucket }, cancellationToken: ct)))
        {
            var version = new DataVersion(new HlcTimestamp(e.VersionHlc), e.VersionOrigin);
            changes.Add(new ShardChange { Kind = ChangeKind.UserErase, Bucket = bucket, UserId = e.UserId, Version = version, Origin = version.Origin });
        }

        foreach (var d in await connection.QueryAsync<BucketDocumentRow>(new CommandDefinition(BucketDocumentsSql, new { Bucket = bucket }, cancellationToken: ct)))
        {
            var version = new DataVersion(new HlcTimestamp(d.VersionHlc), d.VersionOrigin);
            changes.Add(new ShardChange
            {
                Kind = ChangeKind.Document, Bucket = bucket, UserId = d.UserId, Collection = d.Collection, Key = d.Key,
                Body = d.Body, Deleted = d.Deleted, Version = version, Origin = version.Origin,
                PreviousVersion = d.PrevHlc is { } ph && d.PrevOrigin is { } po ? new DataVersion(new HlcTimestamp(ph), po) : null,
            });
        }

        foreach (var c in await connection.QueryAsync<BucketCounterRow>(new CommandDefinition(BucketCountersSql, new { Bucket = bucket }, cancellationToken: ct)))
        {
            var version = new DataVersion(new HlcTimestamp(c.VersionHlc), c.VersionOrigin);
            changes.Add(new ShardChange
            {
                Kind = ChangeKind.Counter, Bucket = bucket, UserId = c.UserId, CounterName = c.Name, CounterRegion = c.Region,
                Increments = c.Increments, Decrements = c.Decrements, Version = version, Origin = version.Origin,
                EraseEpoch = c.EraseHlc is { } eh && c.EraseOrigin is { } eo ? new DataVersion(new HlcTimestamp(eh), eo) : null,
            });
        }

        return changes;
    }

    /// <summary>Change-log entries of <paramref name="origin"/> after <paramref name="afterSeq"/>: what a peer has not acknowledged yet.</summary>
    public async Task<long> CountChangesAsync(long afterSeq, string origin, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CountChangesSql, new { AfterSeq = afterSeq, Origin = origin }, cancellationToken: ct));
    }

    private sealed record BucketDocumentRow(string UserId, string Collection, string Key, string? Body, bool Deleted,
        long VersionHlc, string VersionOrigin, long? PrevHlc, string? PrevOrigin);

    private sealed record BucketCounterRow(string UserId, string Name, string Region, long Increments, long Decrements,
        long VersionHlc, string VersionOrigin, long? EraseHlc, string? EraseOrigin);
}
