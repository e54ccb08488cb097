using Geo.Contracts;
using Geo.Contracts.Replication;
using Geo.Core.Topology;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Receiving;
using Geo.Replicator.Sending;
using Geo.Replicator.Sharding;
using Geo.Replicator.Wire;
using Grpc.Core;
using Microsoft.Extensions.Options;
using StorageDigest = Geo.Storage.BucketDigest;

namespace Geo.Replicator.AntiEntropy;

/// <summary>
/// Anti-entropy with the peers of this region's jurisdiction (their buckets hold the same users: the jurisdiction's
/// and global ones). Compares per-bucket digests of every bucket that holds rows on either side; a divergent bucket is
/// repaired here by pulling the peer's rows and applying them like replicated changes (newer version wins). Each side
/// repairs itself, so a run in every region (periodic, or `geoctl verify` calling Verify) converges both directions.
/// Cross-jurisdiction peers are not compared: their buckets legitimately differ (only global users are shared).
/// </summary>
internal sealed partial class AntiEntropyRunner(GeoTopology topology, IOptions<GeoSiteOptions> site, IOptions<ReplicatorOptions> options,
    LocalShards shards, DirectoryLink directory, BatchApplier applier, IPeerTransport transport, TimeProvider time,
    ILogger<AntiEntropyRunner> logger) : BackgroundService
{
    private readonly SemaphoreSlim _running = new(1, 1);

    /// <summary>Digests of <paramref name="buckets"/>, or of every bucket with rows on a local shard when null.</summary>
    public async Task<IReadOnlyDictionary<int, StorageDigest>> LocalDigestsAsync(IReadOnlyCollection<int>? buckets, CancellationToken ct)
    {
        await shards.WhenMigrated(ct);
        var map = directory.CurrentMap ?? RpcErrors.Unavailable<Contracts.Directory.ShardMapSnapshot>("no shard map from the directory yet; retry shortly.");
        var result = new Dictionary<int, StorageDigest>();
        if (buckets is null)
        {
            foreach (var (shardId, store) in shards.Stores)
            {
                foreach (var bucket in (await store.BucketRowCountsAsync(ct)).Keys.Where(b => map.Map.ShardOf(b) == shardId))
                {
                    result[bucket] = await store.BucketDigestAsync(bucket, ct);
                }
            }
        }
        else
        {
            foreach (var bucket in buckets.Distinct())
            {
                result[bucket] = await shards.Store(map.Map.ShardOf(bucket)).BucketDigestAsync(bucket, ct);
            }
        }

        return result;
    }

    /// <summary>Compares (and when <paramref name="repair"/>, repairs) the buckets with every same-jurisdiction peer.</summary>
    public async Task<IReadOnlyList<PeerVerification>> RunAsync(IReadOnlyCollection<int>? buckets, bool repair, CancellationToken ct)
    {
        await _running.WaitAsync(ct);
        try
        {
            var results = new List<PeerVerification>();
            foreach (var peer in topology.JurisdictionPeers(site.Value.Region))
            {
                var verification = new PeerVerification { Peer = peer };
                try
                {
                    await VerifyPeerAsync(peer, buckets, repair, verification, ct);
                }
                catch (Exception ex) when (ex is RpcException or IOException or HttpRequestException)
                {
                    verification.Error = ex.Message;
                    LogFailed(logger, peer, ex.Message);
                }

                results.Add(verification);
            }

            return results;
        }
        finally
        {
            _running.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.AntiEntropyInterval;
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            try
            {
                await RunAsync(null, repair: true, stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(logger, "*", ex.Message);
            }
        }
    }

    private async Task VerifyPeerAsync(string peer, IReadOnlyCollection<int>? buckets, bool repair, PeerVerification verification, CancellationToken ct)
    {
        var address = options.Value.PeerAddresses.TryGetValue(peer, out var overridden) ? new Uri(overridden) : topology.Region(peer).Replicator;
        var client = transport.Client(address);
        var request = new BucketDigestsRequest();
        if (buckets is not null)
        {
            request.Buckets.Add(buckets);
        }

        var remote = (await client.GetBucketDigestsAsync(request, deadline: time.Deadline(options.Value.AntiEntropyCallTimeout), cancellationToken: ct)).Digests.ToDictionary(d => d.Bucket);
        var local = new Dictionary<int, StorageDigest>(await LocalDigestsAsync(buckets, ct));
        var onlyRemote = remote.Keys.Where(b => !local.ContainsKey(b)).ToList();
        foreach (var (bucket, digest) in await LocalDigestsAsync(onlyRemote, ct))
        {
            local[bucket] = digest;
        }

        var onlyLocal = local.Keys.Where(b => !remote.ContainsKey(b)).ToList();
        if (onlyLocal.Count > 0)
        {
            var more = new BucketDigestsRequest();
            more.Buckets.Add(onlyLocal);
            foreach (var digest in (await client.GetBucketDigestsAsync(more, deadline: time.Deadline(options.Value.AntiEntropyCallTimeout), cancellationToken: ct)).Digests)
            {
                remote[digest.Bucket] = digest;
            }
        }

        verification.BucketsCompared = local.Count;
        foreach (var bucket in local.Keys.Order())
        {
            if (remote.TryGetValue(bucket, out var theirs) && theirs.Hash == local[bucket].Hash)
            {
                continue;
            }

            verification.DivergentBuckets.Add(bucket);
            if (repair)
            {
                verification.RowsApplied += await RepairBucketAsync(client, peer, bucket, ct);
            }
        }

        if (verification.DivergentBuckets.Count > 0)
        {
            LogDivergent(logger, peer, verification.DivergentBuckets.Count, verification.RowsApplied);
        }
    }

    /// <summary>
    /// Pulls the peer's rows of <paramref name="bucket"/> page by page (each page fits one message) and applies each page
    /// like replicated changes; returns how many were newer here. Rows are paged by position in the peer's ordered read,
    /// so a row written at the peer between two pages may shift past a page boundary and be missed or read twice: twice
    /// is harmless (applies are idempotent), and a missed row leaves the digests unequal, so the next run repairs it.
    /// </summary>
    private async Task<int> RepairBucketAsync(Replication.ReplicationClient client, string peer, int bucket, CancellationToken ct)
    {
        var applied = 0;
        var offset = 0;
        while (true)
        {
            var page = await client.GetBucketRowsAsync(new BucketRowsRequest { Bucket = bucket, Offset = offset }, deadline: time.Deadline(options.Value.AntiEntropyCallTimeout), cancellationToken: ct);
            var changes = page.Changes.Select(ChangeMapping.FromWire).OfType<Storage.ShardChange>().ToList();
            var result = await applier.ApplyAsync(peer, stream: null, changes, 0, 0, ct);
            await result.CacheUpdated;
            applied += result.Applied;
            if (!page.More || page.NextOffset <= offset)
            {
                return applied;
            }

            offset = page.NextOffset;
        }
    }

    [LoggerMessage(EventId = EventIds.AntiEntropyDivergent, Level = LogLevel.Information, Message = "Anti-entropy with {Peer}: {Divergent} divergent buckets, {RowsApplied} rows applied")]
    private static partial void LogDivergent(ILogger logger, string peer, int divergent, int rowsApplied);

    [LoggerMessage(EventId = EventIds.AntiEntropyFailed, Level = LogLevel.Warning, Message = "Anti-entropy with {Peer} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string peer, string reason);
}
