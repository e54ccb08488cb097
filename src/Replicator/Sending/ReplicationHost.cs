using Geo.Core.Clock;
using Geo.Core.Signals;
using Geo.Core.Topology;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Sharding;
using Geo.Replicator.Telemetry;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Sending;

/// <summary>
/// Runs a <see cref="PeerLink"/> to every other region (shard streams are filtered per user's residency; the directory
/// stream goes everywhere), refreshes pending counts and the conflict counter, and prunes each shard's change log per
/// replica set: an entry once every peer holding its user acknowledged it (never while a shard move is in flight: moves
/// replay the log).
/// </summary>
internal sealed partial class ReplicationHost(GeoTopology topology, IOptions<GeoSiteOptions> site, IOptions<ReplicatorOptions> options,
    LocalShards shards, DirectoryLink directory, PeerStates peers, IPeerTransport transport, HybridLogicalClock clock,
    ReplicatorMetrics metrics, Retention.RetentionMetrics retention, TimeProvider time, Random random, ILogger<ReplicationHost> logger) : BackgroundService
{
    private static readonly TimeSpan StatsInterval = TimeSpan.FromSeconds(1);
    private const int DirectoryPendingEvery = 10;

    private static readonly TimeSpan ShardWatchInterval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await shards.WhenMigrated(stoppingToken);

        // One generation of links per set of local shards: when the map names a shard added since start-up
        // (geoctl shards add + a move onto it), the links restart with a stream for it. Checkpoints are durable, so a
        // restart resends at most the unacknowledged window, which the receiver applies idempotently.
        while (!stoppingToken.IsCancellationRequested)
        {
            using var generation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var signals = shards.Ids.ToDictionary(id => id, _ => new ChangeSignal(), StringComparer.Ordinal);
            var links = CreateLinks(signals);
            var tasks = links.Select(l => l.RunAsync(generation.Token)).ToList();
            tasks.AddRange(signals.Select(s => shards.Stores[s.Key].ListenForChangesAsync(s.Value.Pulse, generation.Token)));
            tasks.Add(StatsAsync(links, generation.Token));
            tasks.Add(PruneAsync(generation.Token));
            tasks.Add(WatchForNewShardsAsync(generation));
            try
            {
                await Task.WhenAll(tasks);
            }
            catch (OperationCanceledException) when (generation.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
            {
                // A new shard: next generation.
            }
        }
    }

    private List<PeerLink> CreateLinks(Dictionary<string, ChangeSignal> signals)
    {
        var local = site.Value.Region;
        var links = new List<PeerLink>();
        foreach (var peer in peers.All.Keys)
        {
            var streams = new List<IChangeStream>();
            streams.AddRange(shards.Ids.Select(id => new ShardChangeStream(shards.Stores[id], topology, directory, signals[id])));
            streams.Add(new DirectoryChangeStream(directory, shards.CheckpointStore));
            var address = options.Value.PeerAddresses.TryGetValue(peer, out var overridden) ? new Uri(overridden) : topology.Region(peer).Replicator;
            links.Add(new PeerLink(local, peer, address, streams, transport, peers.All[peer], options.Value, clock, time, random, logger));
        }

        return links;
    }

    private async Task WatchForNewShardsAsync(CancellationTokenSource generation)
    {
        var ct = generation.Token;
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(ShardWatchInterval, time, ct);
            if (directory.CurrentMap?.Map.Shards.Where(id => !shards.Stores.ContainsKey(id)).ToArray() is not { Length: > 0 } missing)
            {
                continue;
            }

            try
            {
                var added = await shards.AddAsync(missing, ct);
                LogShardsChanged(logger, string.Join(",", added));
                await generation.CancelAsync();
                return;
            }
            catch (Exception ex) when (ex is InvalidOperationException or Core.Topology.TopologyException or IOException or Npgsql.NpgsqlException)
            {
                LogBackgroundFailed(logger, "opening a new shard", ex.Message);
            }
        }
    }

    private async Task StatsAsync(IReadOnlyList<PeerLink> links, CancellationToken ct)
    {
        var lastConflict = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var tick = 0L; !ct.IsCancellationRequested; tick++)
        {
            try
            {
                foreach (var link in links)
                {
                    foreach (var stream in link.Streams)
                    {
                        // Counting the directory's entries is a page read through the directory: every
                        // DirectoryPendingEvery ticks is enough for a figure that only shows a backlog.
                        if (stream is DirectoryChangeStream && tick % DirectoryPendingEvery != 0)
                        {
                            continue;
                        }

                        // The sender keeps the acknowledged checkpoint it persisted; read it back only before a first session.
                        var acked = link.State.Acknowledged.TryGetValue(stream.Name, out var known) ? known : await stream.GetCheckpointAsync(link.Peer, ct);
                        link.State.Pending[stream.Name] = await stream.PendingAsync(acked, ct);
                    }
                }

                foreach (var (shardId, store) in shards.Stores)
                {
                    var first = !lastConflict.TryGetValue(shardId, out var after);
                    var page = await store.ReadConflictsAsync(after, 1000, ct);
                    while (page.Count > 0)
                    {
                        if (!first)
                        {
                            metrics.Conflicts(shardId, page.Count);
                        }

                        after = page[^1].Id;
                        page = await store.ReadConflictsAsync(after, 1000, ct);
                    }

                    lastConflict[shardId] = after;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                LogBackgroundFailed(logger, "statistics", ex.Message);
            }

            await Task.Delay(StatsInterval, time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task PruneAsync(CancellationToken ct)
    {
        // Per replica set (Storage/Retention/ChangeLogPruner.cs): an entry waits only for the peers that hold its user.
        var pruners = new Dictionary<string, Storage.Retention.ChangeLogPruner>(StringComparer.Ordinal);
        var peersOf = new Dictionary<string, IReadOnlyCollection<string>>(StringComparer.Ordinal);
        async ValueTask<IReadOnlyCollection<string>?> ReplicaPeersAsync(string userId, CancellationToken token)
        {
            if (await directory.ResidencyAsync(userId, token) is not { } residency)
            {
                return null;
            }

            if (!peersOf.TryGetValue(residency, out var held))
            {
                peersOf[residency] = held = [.. peers.All.Keys.Where(peer => topology.IsAllowed(residency, peer))];
            }

            return held;
        }

        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(options.Value.PruneInterval, time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (ct.IsCancellationRequested || directory.CurrentMap is not { } map || map.Moves.Count > 0)
            {
                continue;
            }

            try
            {
                foreach (var (shardId, store) in shards.Stores)
                {
                    var acknowledged = new Dictionary<string, long>(StringComparer.Ordinal);
                    foreach (var peer in peers.All.Keys)
                    {
                        acknowledged[peer] = await store.GetCheckpointAsync(peer, shardId, ct);
                    }

                    if (!pruners.TryGetValue(shardId, out var pruner))
                    {
                        pruners[shardId] = pruner = new Storage.Retention.ChangeLogPruner(store);
                    }

                    var pass = await pruner.PruneAsync(acknowledged, ReplicaPeersAsync, ct);
                    retention.Removed(shardId, "change_log", pass.Prefix + pass.ByReplicaSet);
                    if (pass.Prefix + pass.ByReplicaSet > 0)
                    {
                        LogPruned(logger, shardId, pass.Prefix, pass.ByReplicaSet);
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                LogBackgroundFailed(logger, "pruning", ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = EventIds.Pruned, Level = LogLevel.Information, Message = "Pruned change-log entries of shard {ShardId}: {Prefix} acknowledged by every peer, {ByReplicaSet} by every region of their user's replica set")]
    private static partial void LogPruned(ILogger logger, string shardId, int prefix, int byReplicaSet);

    [LoggerMessage(EventId = EventIds.ShardsChanged, Level = LogLevel.Information, Message = "New local shards {ShardIds}: restarting the peer links with their streams")]
    private static partial void LogShardsChanged(ILogger logger, string shardIds);

    [LoggerMessage(EventId = EventIds.BackgroundFailed, Level = LogLevel.Warning, Message = "Replication {Task} failed: {Reason}; trying again")]
    private static partial void LogBackgroundFailed(ILogger logger, string task, string reason);
}
