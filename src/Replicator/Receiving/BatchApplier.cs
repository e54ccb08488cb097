using Geo.Core.Logging;
using Geo.Core.Clock;
using Geo.Core.Topology;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Sharding;
using Geo.Replicator.Telemetry;
using Geo.Storage;
using Geo.Storage.Caching;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Receiving;

/// <summary>What <see cref="BatchApplier.ApplyAsync"/> did with a batch.</summary>
/// <param name="AppliedThrough">Highest sequence such that every change up to it is applied or durably refused.</param>
/// <param name="Stopped">True when a change was held (unknown user, fenced bucket, no map) or quarantined: resend from AppliedThrough.</param>
/// <param name="Applied">Changes that were newer and are now stored.</param>
/// <param name="Skipped">Changes not newer than the stored value.</param>
/// <param name="Refused">Changes refused for residency or origin.</param>
/// <param name="Quarantined">Changes beyond the clock-skew bound.</param>
/// <param name="CacheUpdated">
/// The cache invalidations of what was applied, sent once the shards committed and not awaited by the apply: the caller
/// acknowledges the batch after they ended and may apply the next batch meanwhile. Faults only when cancelled (the cache
/// is best effort).
/// </param>
internal sealed record ApplyResult(long AppliedThrough, bool Stopped, int Applied, int Skipped, int Refused, int Quarantined, Task CacheUpdated);

/// <summary>
/// Applies changes from a peer: checks each against this region's own view (never the sender's word), routes it to
/// the local shard that owns its bucket under the current map, and applies each shard's share in one transaction
/// with the checkpoint. Refused changes (residency excludes this region, or an origin that is not the peer) are
/// counted, logged and acknowledged past: they will never be acceptable. A change that cannot be applied yet (user not
/// in the local directory yet, bucket fenced by a move) or is quarantined (HLC beyond the skew bound) stops the batch
/// there; nothing at or after it is acknowledged, so the sender sends it again.
/// </summary>
internal sealed partial class BatchApplier(GeoTopology topology, IOptions<GeoSiteOptions> site, LocalShards shards, DirectoryLink directory,
    HybridLogicalClock clock, DocumentCache cache, ReplicatorMetrics metrics, ILogger<BatchApplier> logger)
{
    private static readonly TimeSpan FenceWait = TimeSpan.FromSeconds(2);
    private readonly string _local = site.Value.Region;

    /// <param name="peer">The authenticated peer.</param>
    /// <param name="stream">The peer's stream (its shard id) for the checkpoint; null for anti-entropy rows.</param>
    /// <param name="changes">In sequence order.</param>
    /// <param name="afterSeq">Exclusive start of the batch.</param>
    /// <param name="lastSeq">Inclusive end of the batch.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<ApplyResult> ApplyAsync(string peer, string? stream, IReadOnlyList<ShardChange> changes, long afterSeq, long lastSeq,
        CancellationToken ct)
    {
        await shards.WhenMigrated(ct);
        var map = directory.CurrentMap;
        if (map is null)
        {
            return new ApplyResult(afterSeq, Stopped: changes.Count > 0, 0, 0, 0, 0, Task.CompletedTask);
        }

        var accepted = new List<ShardChange>(changes.Count);
        long? stopAt = null;
        int refusedResidency = 0, refusedOrigin = 0, refusedErased = 0, quarantined = 0;
        foreach (var change in changes)
        {
            // Stream batches and anti-entropy rows alike: a peer speaks only for what originated in its own region.
            if ((change.Origin != peer || change.Version.Origin != peer || (change.Kind == ChangeKind.Counter && change.CounterRegion != peer)))
            {
                refusedOrigin++;
                LogRefused(logger, peer, UserLogName.Of(change.UserId), "origin is not the sending region");
                continue;
            }

            var residency = await directory.ResidencyAsync(change.UserId, ct);
            if (residency is null)
            {
                stopAt = change.Seq;
                LogHeld(logger, peer, UserLogName.Of(change.UserId), "user not in this region's directory yet");
                break;
            }

            if (!topology.IsAllowed(residency, _local) || !topology.IsAllowed(residency, peer))
            {
                // Neither may this region hold the user, nor can a region the residency excludes have written it.
                refusedResidency++;
                LogRefused(logger, peer, UserLogName.Of(change.UserId), $"residency '{residency}' excludes {(topology.IsAllowed(residency, _local) ? peer : _local)}");
                continue;
            }

            if (change.Kind != ChangeKind.UserErase && directory.IsErased(change.UserId))
            {
                // Erased here: no change of the user is stored again, whatever its version (the shard refuses it too,
                // ShardStore.Erasure.cs; this spares the shard the batch). Acknowledged past: it will never be acceptable.
                refusedErased++;
                continue;
            }

            if (clock.IsBeyondSkew(change.Version.Hlc) || (change.EraseEpoch is { } epoch && clock.IsBeyondSkew(epoch.Hlc)))
            {
                quarantined++;
                stopAt = change.Seq;
                LogQuarantined(logger, peer, UserLogName.Of(change.UserId), change.Version.ToString());
                break;
            }

            if (map.IsFenced(change.Bucket))
            {
                map = await directory.WaitForNewerMapAsync(map.Epoch, FenceWait, ct) ?? map;
                if (map.IsFenced(change.Bucket))
                {
                    stopAt = change.Seq;
                    LogHeld(logger, peer, UserLogName.Of(change.UserId), $"bucket {change.Bucket} is fenced by a move");
                    break;
                }
            }

            accepted.Add(change);
        }

        var through = stopAt is { } s ? Math.Min(s - 1, lastSeq) : lastSeq;
        int applied = 0, skipped = 0;
        var invalidations = new List<Task>(); // Sent together: the Redis client pipelines them instead of one round trip each.
        foreach (var group in accepted.GroupBy(c => map.Map.ShardOf(c.Bucket), StringComparer.Ordinal))
        {
            var batch = group.ToList();
            var checkpoint = stream is null ? null : new ReplicationCheckpoint(peer, stream, through);
            var outcomes = await shards.Store(group.Key).ApplyRemoteAsync(batch, checkpoint, ct, outOfOrder: stream is null); // anti-entropy rows: no stream order
            for (var i = 0; i < outcomes.Count; i++)
            {
                var change = batch[i];
                switch (outcomes[i])
                {
                    case ApplyOutcome.Applied:
                        applied++;
                        if (change.Kind == ChangeKind.Document)
                        {
                            invalidations.Add(cache.InvalidateAsync(change.UserId, change.Collection!, change.Key!, change.Version, ct));
                        }
                        else if (change.Kind == ChangeKind.UserErase)
                        {
                            invalidations.Add(cache.ForgetUserAsync(change.UserId, ct));
                        }

                        break;
                    case ApplyOutcome.Skipped:
                        skipped++;
                        break;
                    case ApplyOutcome.Quarantined:
                        quarantined++;
                        through = Math.Min(through, change.Seq - 1);
                        stopAt ??= change.Seq;
                        break;
                }
            }
        }

        metrics.Applied(peer, applied);
        metrics.Skipped(peer, skipped);
        metrics.Refused(peer, "residency", refusedResidency);
        metrics.Refused(peer, "origin", refusedOrigin);
        metrics.Refused(peer, "erased", refusedErased);
        metrics.Quarantined(peer, quarantined);
        return new ApplyResult(Math.Max(through, afterSeq), stopAt is not null, applied, skipped, refusedResidency + refusedOrigin + refusedErased, quarantined,
            Task.WhenAll(invalidations));
    }

    [LoggerMessage(EventId = EventIds.ChangesRefused, Level = LogLevel.Warning, Message = "Refused a change from {Peer} for user {User}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string peer, string user, string reason);

    [LoggerMessage(EventId = EventIds.ChangesQuarantined, Level = LogLevel.Warning, Message = "Quarantined a change from {Peer} for user {User}: version {Version} is beyond the clock-skew bound")]
    private static partial void LogQuarantined(ILogger logger, string peer, string user, string version);

    [LoggerMessage(EventId = EventIds.BatchHeld, Level = LogLevel.Information, Message = "Holding a batch from {Peer} at user {User}: {Reason}; the peer will send it again")]
    private static partial void LogHeld(ILogger logger, string peer, string user, string reason);
}
