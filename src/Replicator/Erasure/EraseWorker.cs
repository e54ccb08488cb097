using System.Diagnostics.Metrics;
using Geo.Core.Logging;
using Geo.Core.Placement;
using Geo.Core.Topology;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Sharding;
using Geo.Storage;
using Geo.Storage.Caching;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Erasure;

/// <summary>
/// Completes erasures in this region (docs/architecture.md, "The path of one erase"). The directory's erase marker is
/// the durable record of an erase: written first by the region that took the request, replicated to every region like
/// any directory entry. This worker reads the markers from the directory tail (<see cref="DirectoryLink"/>), and for
/// every erased user whose residency allows this region and whose owning shard does not hold the shard marker yet,
/// erases the user there (<see cref="ShardStore.EraseUserAsync(string, Core.Versioning.DataVersion, CancellationToken)"/>)
/// and drops the user's cache entries. Resumable by construction: after a restart the tail reads every marker again
/// and the shard markers say which are done; a shard that is away, or a bucket fenced by a move, is tried again on the
/// next round. Progress per region is the shard marker's <c>erased_at</c> (<c>geoctl users get</c>).
/// </summary>
internal sealed partial class EraseWorker(GeoTopology topology, IOptions<GeoSiteOptions> site, IOptions<ReplicatorOptions> options, LocalShards shards,
    DirectoryLink directory, DocumentCache cache, IMeterFactory meters, ILogger<EraseWorker> logger) : BackgroundService
{
    private readonly string _local = site.Value.Region;
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);
    private readonly Counter<long> _completed = meters.Create("Geo.Replicator").CreateCounter<long>("geo.replicator.erasures_completed", "{user}",
        "User erasures this region's shards completed (the shard marker committed).");

    private long _pending;

    /// <summary>Erase markers read from the directory that this region has not completed yet (observed at each round).</summary>
    public long Pending => Interlocked.Read(ref _pending);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        meters.Create("Geo.Replicator").CreateObservableGauge("geo.replicator.erasures_pending", () => Pending, "{user}",
            "Erase markers in this region's directory whose shard removal has not completed here yet.");
        await shards.WhenMigrated(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RoundAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogRoundFailed(logger, ex.GetType().Name, ex.Message);
            }

            try
            {
                await Task.Delay(options.Value.EraseInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One pass over the markers not completed yet: one query per shard finds the done ones, then one erase per user.</summary>
    internal async Task RoundAsync(CancellationToken ct)
    {
        var map = directory.CurrentMap;
        var pending = directory.ErasedUsers.Where(e => !_done.Contains(e.UserId)).ToList();
        if (map is null || pending.Count == 0)
        {
            Interlocked.Exchange(ref _pending, pending.Count);
            return;
        }

        var left = 0;
        foreach (var entry in pending.Where(e => !topology.IsAllowed(e.Residency, _local)))
        {
            _done.Add(entry.UserId); // This region never held the user.
        }

        foreach (var group in pending.Where(e => topology.IsAllowed(e.Residency, _local)).GroupBy(e => map.Map.ShardOf(Buckets.Of(e.UserId)), StringComparer.Ordinal))
        {
            var store = shards.Store(group.Key);
            IReadOnlySet<string> erased;
            try
            {
                erased = await store.ErasedAmongAsync([.. group.Select(e => e.UserId)], ct);
            }
            catch (Npgsql.NpgsqlException ex)
            {
                left += group.Count();
                LogShardAway(logger, group.Key, ex.Message);
                continue;
            }

            foreach (var entry in group)
            {
                if (erased.Contains(entry.UserId))
                {
                    _done.Add(entry.UserId);
                    continue;
                }

                if (map.IsFenced(Buckets.Of(entry.UserId)))
                {
                    left++; // A move holds the bucket: erase on the shard that owns it after the flip.
                    continue;
                }

                try
                {
                    await store.EraseUserAsync(entry.UserId, entry.Version, ct);
                    await cache.ForgetUserAsync(entry.UserId, ct);
                    _done.Add(entry.UserId);
                    _completed.Add(1);
                    LogCompleted(logger, UserLogName.Of(entry.UserId), group.Key);
                }
                catch (Exception ex) when (ex is Npgsql.NpgsqlException or BucketFencedException or TimeoutException)
                {
                    left++;
                    LogShardAway(logger, group.Key, ex.Message);
                }
            }
        }

        Interlocked.Exchange(ref _pending, left);
    }

    [LoggerMessage(EventId = EventIds.EraseCompleted, Level = LogLevel.Information, Message = "Completed the erase of user {User} on shard {ShardId}")]
    private static partial void LogCompleted(ILogger logger, string user, string shardId);

    [LoggerMessage(EventId = EventIds.EraseDeferred, Level = LogLevel.Warning, Message = "Erase worker: shard {ShardId} did not take the erase ({Reason}); trying again next round")]
    private static partial void LogShardAway(ILogger logger, string shardId, string reason);

    [LoggerMessage(EventId = EventIds.EraseRoundFailed, Level = LogLevel.Warning, Message = "Erase worker round failed ({ExceptionType}: {Reason}); trying again next round")]
    private static partial void LogRoundFailed(ILogger logger, string exceptionType, string reason);
}
